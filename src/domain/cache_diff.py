"""Build a first snapshot, or diff fresh Bytemark lists against the cached document.

Rules (SPEC section 2):
- `passes` is rebuilt from the v1 list: an unchanged hash keeps the cached entry (its timestamp
  and free status), a changed hash takes the new status/payload/hash with timestamp = now.
- `passes4` is incremental: new uuids added, changed hashes replaced, missing ones kept.
- A pass whose uuid is in neither cached list is new; a new free-ticket product gets status 1.
- Every new or changed entry in either list becomes a ticket-log entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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
)
from domain.ordering import sort_by_time_created, time_created_sort_key
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
    return uuid if isinstance(uuid, str) else str(uuid)


def _entry(payload: Payload, digest: str, now: int, free_ticket_status: int) -> CachedPass:
    return CachedPass(
        pass_uuid=_uuid_of(payload),
        timestamp=now,
        status=payload.get("status"),
        free_ticket_status=free_ticket_status,
        payload=payload,
        payload_hash=digest,
    )


def _dedupe_by_uuid(payloads: Iterable[Payload]) -> list[Payload]:
    """A uuid listed twice keeps its first position and last value, like a JS object would."""
    by_uuid: dict[str, Payload] = {}
    for payload in payloads:
        by_uuid[_uuid_of(payload)] = payload
    return list(by_uuid.values())


def _sorted_unique(payloads: Sequence[Payload]) -> list[Payload]:
    return sort_by_time_created(_dedupe_by_uuid(payloads))


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

    def _known(self, uuid: str, own_list: dict[str, CachedPass]) -> CachedPass | None:
        return own_list.get(uuid) or self.old_passes.get(uuid) or self.old_passes4.get(uuid)

    def reconcile(self, payload: Payload, own_list: dict[str, CachedPass], pass_list: PassList) -> CachedPass:
        """The entry to store for one fresh payload, logging it when new or changed."""
        uuid = _uuid_of(payload)
        digest = payload_hash(payload)
        cached = self._known(uuid, own_list)
        if cached is not None and cached.payload_hash == digest:
            return cached
        if cached is not None:
            entry = _entry(payload, digest, self.now, cached.free_ticket_status)
            self.changed += 1
            self._log(entry, pass_list, Change.UPDATED)
            return entry
        is_new_free = self.policy.is_free(payload)
        entry = _entry(payload, digest, self.now, 1 if is_new_free else 0)
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


def update_cache(old: TicketCache, fetched: FetchedPasses, now: int, policy: FreeTicketPolicy) -> CacheUpdate:
    """Diff the fresh lists against `old`. The result keeps `old.version`; the store bumps it."""
    diff = _Diff(old, policy, now)

    passes = [diff.reconcile(p, diff.old_passes, PassList.PASSES) for p in _sorted_unique(fetched.v1)]
    fresh_uuids = {e.pass_uuid for e in passes}
    removed = sum(1 for uuid in diff.old_passes if uuid not in fresh_uuids)

    passes4_by_uuid = dict(diff.old_passes4)
    for payload in _sorted_unique(fetched.v4_expired):
        entry = diff.reconcile(payload, diff.old_passes4, PassList.PASSES4)
        passes4_by_uuid[entry.pass_uuid] = entry
    passes4 = sorted(passes4_by_uuid.values(), key=lambda e: time_created_sort_key(e.payload))

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
    anything_changed = diff.new or diff.changed or removed
    return CacheUpdate(
        cache=cache,
        outcome=Outcome.UPDATED if anything_changed else Outcome.UNCHANGED,
        counts=counts,
        log_entries=tuple(diff.log),
        new_free_passes=tuple(diff.new_free.values()),
    )
