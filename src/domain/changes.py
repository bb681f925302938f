"""Pass-level changes between two versions of a user's cache: what the change feed publishes."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from domain.model import CachedPass, PassList, TicketCache


class ChangeKind(enum.StrEnum):
    ADDED = "added"
    CHANGED = "changed"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class PassChange:
    """One entry added to, changed in or removed from one list of one user's cache."""

    user_id: int
    list: PassList
    pass_uuid: str
    kind: ChangeKind
    free_ticket: bool
    payload_hash: str
    changed_at: int


def cache_changes(
    user_id: int, old: TicketCache | None, new: TicketCache | None, now: int
) -> tuple[PassChange, ...]:
    """The changes that turn `old` into `new` (either may be None: no cache). Applying them to
    the (list, pass_uuid) -> payload_hash map of `old` gives exactly the map of `new`."""
    changes: list[PassChange] = []
    for pass_list in (PassList.PASSES, PassList.PASSES4):
        before = _entries(old, pass_list)
        after = _entries(new, pass_list)
        for uuid, entry in after.items():
            previous = before.get(uuid)
            if previous is None:
                changes.append(_change(user_id, pass_list, entry, ChangeKind.ADDED, now))
            elif previous.payload_hash != entry.payload_hash:
                changes.append(_change(user_id, pass_list, entry, ChangeKind.CHANGED, now))
        for uuid, entry in before.items():
            if uuid not in after:
                changes.append(_change(user_id, pass_list, entry, ChangeKind.REMOVED, now))
    return tuple(changes)


def _entries(cache: TicketCache | None, pass_list: PassList) -> dict[str, CachedPass]:
    if cache is None:
        return {}
    entries = cache.passes if pass_list is PassList.PASSES else cache.passes4
    return {entry.pass_uuid: entry for entry in entries}  # a duplicate uuid keeps its last entry


def _change(user_id: int, pass_list: PassList, entry: CachedPass, kind: ChangeKind, now: int) -> PassChange:
    return PassChange(
        user_id, pass_list, entry.pass_uuid, kind, entry.free_ticket_status == 1, entry.payload_hash, now
    )
