"""Build a first snapshot, or diff fresh Bytemark lists against the cached document.

Rules (those of the Node job it replaces):
- `passes` is rebuilt from the v1 list: an unchanged hash keeps the cached entry (its timestamp
  and free status), a changed hash takes the new status/payload/hash with timestamp = now.
- `passes4` is incremental: new uuids added, changed hashes replaced, missing ones kept (with a
  retention of N days, a missing one whose entry is older than N days is dropped).
- A pass whose uuid is in neither cached list is new; a new free-ticket product gets status 1.
- Every new or changed entry in either list becomes a ticket-log entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.free_tickets import FreeTicketPolicy
from domain.model import (
    CachedPass,
    Change,
    FetchedPasses,
    Outcome,
    PassList,
    Payload,
    RefreshCounts,
    TicketCache,
    TicketLogEntry,
    make_cached_pass,
)
from domain.ordering import ordered_by_instant, sort_by_time_created, time_created_instant
from domain.payload_hash import payload_hash


@dataclass(frozen=True, slots=True)
class CacheUpdate:
    """The outcome of diffing one user's fresh lists against the stored cache."""

    cache: TicketCache
    outcome: Outcome
    counts: RefreshCounts
    log_entries: tuple[TicketLogEntry, ...]
    new_free_passes: tuple[CachedPass, ...]


def _uuid_of(payload: Payload) -> str:
    uuid = payload.get("uuid")
    return uuid if type(uuid) is str else str(uuid)


def _entry(payload: Payload, digest: str, now: int, free_ticket_status: int) -> CachedPass:
    return make_cached_pass(
        _uuid_of(payload), now, payload.get("status"), free_ticket_status, payload, digest
    )


def _dedupe_by_uuid(payloads: Iterable[Payload]) -> dict[str, Payload]:
    """A uuid listed twice keeps its first position and last value, like a JS object would."""
    by_uuid: dict[str, Payload] = {}
    for payload in payloads:
        uuid = payload.get("uuid")
        by_uuid[uuid if type(uuid) is str else str(uuid)] = payload
    return by_uuid


def _sorted_unique(payloads: Sequence[Payload]) -> list[Payload]:
    return sort_by_time_created(_dedupe_by_uuid(payloads).values())


def _ordered_uuids(uuids: Iterable[str], instants: dict[str, datetime | None]) -> list[str]:
    """`uuids` ordered by their instants (None last), stable: `sort_by_time_created`'s order."""
    return ordered_by_instant(uuids, instants.__getitem__)


def _prepare(
    payloads: Sequence[Payload], instants: dict[str, datetime | None]
) -> tuple[list[str], dict[str, Payload], dict[str, str]]:
    """The deduplicated payloads by uuid, their hashes by uuid, and their uuids ordered by
    time_created (stable); parsed instants are left in `instants` by uuid. Payloads are hashed
    in the order received (better memory locality than hashing in sorted order), only strings
    are sorted, and no per-pass container is built (fewer GC-tracked allocations)."""
    by_uuid = _dedupe_by_uuid(payloads)
    digests: dict[str, str] = {}
    for uuid, payload in by_uuid.items():
        digests[uuid] = payload_hash(payload)
        instants[uuid] = time_created_instant(payload)
    return _ordered_uuids(by_uuid, instants), by_uuid, digests


def build_cache(user_id: int, fetched: FetchedPasses, now: int, version: int = 0) -> TicketCache:
    """The first snapshot: every entry has free_ticket_status 0 (it never notifies)."""
    return TicketCache(
        user_id=user_id,
        timestamp=now,
        passes=tuple(_entry(p, payload_hash(p), now, 0) for p in _sorted_unique(fetched.v1)),
        passes4=tuple(_entry(p, payload_hash(p), now, 0) for p in _sorted_unique(fetched.v4_expired)),
        version=version,
    )


class _Diff:
    """Accumulates log entries and counts while the two lists are rebuilt."""

    def __init__(self, old: TicketCache, policy: FreeTicketPolicy, now: int) -> None:
        self.old = old
        self.policy = policy
        self.now = now
        self.old_passes = {e.pass_uuid: e for e in old.passes}
        self.old_passes4 = {e.pass_uuid: e for e in old.passes4}
        self.log: list[TicketLogEntry] = []
        self.new_free: dict[str, CachedPass] = {}
        self.new = 0
        self.changed = 0

    def reconcile(
        self, uuid: str, payload: Payload, digest: str, own_list: dict[str, CachedPass], pass_list: PassList
    ) -> CachedPass:
        """The entry to store for one fresh payload (hashed as `digest`), logging it when new or changed."""
        cached = own_list.get(uuid) or self.old_passes.get(uuid) or self.old_passes4.get(uuid)
        if cached is not None and cached.payload_hash == digest:
            return cached
        if cached is not None:
            entry = make_cached_pass(
                uuid, self.now, payload.get("status"), cached.free_ticket_status, payload, digest
            )
            self.changed += 1
            self._log(entry, pass_list, Change.UPDATED)
            return entry
        is_new_free = self.policy.is_free(payload)
        entry = make_cached_pass(
            uuid, self.now, payload.get("status"), 1 if is_new_free else 0, payload, digest
        )
        if is_new_free:
            self.new_free.setdefault(uuid, entry)
        self.new += 1
        self._log(entry, pass_list, Change.CREATED)
        return entry

    def _log(self, entry: CachedPass, pass_list: PassList, change: Change) -> None:
        self.log.append(
            TicketLogEntry(
                user_id=self.old.user_id,
                pass_uuid=entry.pass_uuid,
                list=pass_list,
                change=change,
                status=entry.status,
                payload=entry.payload,
                payload_hash=entry.payload_hash,
                timestamp=self.now,
            )
        )


def _rebuilt(
    order: list[str],
    by_uuid: dict[str, Payload],
    digests: dict[str, str],
    old_passes: dict[str, CachedPass],
    reconcile: Callable[[str, Payload, str, dict[str, CachedPass], PassList], CachedPass],
) -> list[CachedPass]:
    """The new `passes` in `order`: an unchanged pass (most of them) keeps its cached entry
    without a call to `reconcile`, which would return that same entry."""
    passes: list[CachedPass] = []
    append = passes.append
    cached_entry = old_passes.get
    for uuid in order:
        cached = cached_entry(uuid)
        digest = digests[uuid]
        if cached is None or cached.payload_hash != digest:
            cached = reconcile(uuid, by_uuid[uuid], digest, old_passes, PassList.PASSES)
        append(cached)
    return passes


SECONDS_PER_DAY = 86_400


def forget_expired(
    passes4: dict[str, CachedPass], still_listed: dict[str, Payload], now: int, retention_days: int | None
) -> int:
    """Drop from `passes4` (in place) every entry Bytemark no longer lists whose `timestamp` (created
    or last changed) is more than `retention_days` days before `now`; None keeps all, as Node did.
    An entry still listed is kept at any age: dropping it would log it as new on the next update.
    Returns how many were dropped."""
    if retention_days is None:
        return 0
    cutoff = now - retention_days * SECONDS_PER_DAY
    expired = [
        uuid for uuid, entry in passes4.items() if uuid not in still_listed and entry.timestamp < cutoff
    ]
    for uuid in expired:
        del passes4[uuid]
    return len(expired)


def update_cache(
    old: TicketCache,
    fetched: FetchedPasses,
    now: int,
    policy: FreeTicketPolicy,
    passes4_retention_days: int | None = None,
) -> CacheUpdate:
    """Diff the fresh lists against `old`. The result keeps `old.version`; the store bumps it.

    Apart from hashing each fresh payload once (the irreducible part), every step is one dict
    operation per pass; sort keys are computed once per payload."""
    diff = _Diff(old, policy, now)
    reconcile = diff.reconcile

    old_passes = diff.old_passes
    order, by_uuid, digests = _prepare(fetched.v1, {})
    passes = _rebuilt(order, by_uuid, digests, old_passes, reconcile)
    removed = sum(1 for uuid in old_passes if uuid not in by_uuid)

    old_passes4 = diff.old_passes4
    passes4_by_uuid = dict(old_passes4)
    # Instants by uuid: an entry kept for an unchanged hash has the fresh one's time_created.
    instants4: dict[str, datetime | None] = {}
    order, by_uuid, digests = _prepare(fetched.v4_expired, instants4)
    for uuid in order:
        cached = old_passes4.get(uuid)
        digest = digests[uuid]
        if cached is None or cached.payload_hash != digest:  # else kept as it is
            passes4_by_uuid[uuid] = reconcile(uuid, by_uuid[uuid], digest, old_passes4, PassList.PASSES4)
    forgotten = forget_expired(passes4_by_uuid, by_uuid, now, passes4_retention_days)

    for uuid, entry in passes4_by_uuid.items():
        if uuid not in instants4:  # kept from the cache, no longer listed
            instants4[uuid] = time_created_instant(entry.payload)
    passes4 = [passes4_by_uuid[uuid] for uuid in _ordered_uuids(passes4_by_uuid, instants4)]

    cache = TicketCache(
        user_id=old.user_id,
        timestamp=now,
        passes=tuple(passes),
        passes4=tuple(passes4),
        version=old.version,
    )
    counts = RefreshCounts(
        passes=len(passes),
        passes4=len(passes4),
        new=diff.new,
        changed=diff.changed,
        removed=removed,
        new_free=len(diff.new_free),
    )
    anything_changed = diff.new or diff.changed or removed or forgotten
    return CacheUpdate(
        cache=cache,
        outcome=Outcome.UPDATED if anything_changed else Outcome.UNCHANGED,
        counts=counts,
        log_entries=tuple(diff.log),
        new_free_passes=tuple(diff.new_free.values()),
    )
