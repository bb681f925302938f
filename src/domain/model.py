"""Value objects of the ticket cache: one cached pass entry and one cache document per user."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: A pass object exactly as Bytemark sent it (parsed JSON object).
Payload = dict[str, Any]


class PassList(enum.StrEnum):
    """Which list of the cache document an entry belongs to."""

    PASSES = "passes"  # v1 list, rebuilt on every update
    PASSES4 = "passes4"  # v4 EXPIRED list, updated incrementally, never forgets


class Change(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"


class Outcome(enum.StrEnum):
    BUILT = "BUILT"
    UPDATED = "UPDATED"
    UNCHANGED = "UNCHANGED"
    FRESH = "FRESH"
    NO_VALID_TOKEN = "NO_VALID_TOKEN"


@dataclass(frozen=True, slots=True)
class CachedPass:
    """One entry of `passes` or `passes4`, in the document shape Node wrote."""

    pass_uuid: str
    timestamp: int
    status: Any
    free_ticket_status: int
    payload: Payload
    payload_hash: str

    def to_document(self) -> dict[str, Any]:
        return {
            "pass_uuid": self.pass_uuid,
            "timestamp": self.timestamp,
            "status": self.status,
            "free_ticket_status": self.free_ticket_status,
            "payload": self.payload,
            "payload_hash": self.payload_hash,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> CachedPass:
        # Hot on every read (one call per stored entry): values of the usual type are taken
        # as they are, and the instance is filled through its slots (see `make_cached_pass`).
        pass_uuid = doc.get("pass_uuid", "")
        if type(pass_uuid) is not str:
            pass_uuid = str(pass_uuid)
        timestamp = doc.get("timestamp")
        if type(timestamp) is not int:
            timestamp = int(timestamp or 0)
        free_ticket_status = doc.get("free_ticket_status")
        if type(free_ticket_status) is not int:
            free_ticket_status = int(free_ticket_status or 0)
        payload_hash = doc.get("payload_hash", "")
        if type(payload_hash) is not str:
            payload_hash = str(payload_hash)
        status, payload = doc.get("status"), doc.get("payload") or {}
        if cls is not CachedPass:  # a subclass keeps its own __init__
            return cls(pass_uuid, timestamp, status, free_ticket_status, payload, payload_hash)
        return make_cached_pass(pass_uuid, timestamp, status, free_ticket_status, payload, payload_hash)


def _slot_setters() -> tuple[Callable[[CachedPass, Any], None], ...]:
    slots = CachedPass.__dict__
    names = ("pass_uuid", "timestamp", "status", "free_ticket_status", "payload", "payload_hash")
    return tuple(slots[name].__set__ for name in names)


(
    _set_pass_uuid,
    _set_timestamp,
    _set_status,
    _set_free_ticket_status,
    _set_payload,
    _set_payload_hash,
) = _slot_setters()
_new_object = object.__new__


def make_cached_pass(
    pass_uuid: str, timestamp: int, status: Any, free_ticket_status: int, payload: Payload, payload_hash: str
) -> CachedPass:
    """`CachedPass(...)` with positional arguments, about 2.5x cheaper: the frozen dataclass
    __init__ sets each field through `object.__setattr__`; this writes the slots directly.
    No conversion or check: the caller passes values of the annotated types."""
    entry: CachedPass = _new_object(CachedPass)
    _set_pass_uuid(entry, pass_uuid)
    _set_timestamp(entry, timestamp)
    _set_status(entry, status)
    _set_free_ticket_status(entry, free_ticket_status)
    _set_payload(entry, payload)
    _set_payload_hash(entry, payload_hash)
    return entry


@dataclass(frozen=True, slots=True)
class TicketCache:
    """The cache document of one user. `version` drives compare-and-set writes;
    documents written by the old Node service have none and read as version 0."""

    user_id: int
    timestamp: int
    passes: tuple[CachedPass, ...] = ()
    passes4: tuple[CachedPass, ...] = ()
    version: int = 0

    def to_document(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "timestamp": self.timestamp,
            "passes": [p.to_document() for p in self.passes],
            "passes4": [p.to_document() for p in self.passes4],
            "version": self.version,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> TicketCache:
        return cls(
            user_id=int(doc["user_id"]),
            timestamp=int(doc.get("timestamp") or 0),
            passes=tuple(CachedPass.from_document(p) for p in doc.get("passes") or ()),
            passes4=tuple(CachedPass.from_document(p) for p in doc.get("passes4") or ()),
            version=int(doc.get("version") or 0),
        )


@dataclass(frozen=True, slots=True)
class TicketLogEntry:
    """One row of the ticket log: a new or changed entry in either list."""

    user_id: int
    pass_uuid: str
    list: PassList
    change: Change
    status: Any
    payload: Payload
    payload_hash: str
    timestamp: int

    def to_document(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "pass_uuid": self.pass_uuid,
            "list": self.list.value,
            "change": self.change.value,
            "status": self.status,
            "payload": self.payload,
            "payload_hash": self.payload_hash,
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True, slots=True)
class RefreshCounts:
    passes: int = 0
    passes4: int = 0
    new: int = 0
    changed: int = 0
    removed: int = 0
    new_free: int = 0


@dataclass(frozen=True, slots=True)
class FetchedPasses:
    """Both lists as Bytemark returned them for one user."""

    v1: list[Payload] = field(default_factory=list)
    v4_expired: list[Payload] = field(default_factory=list)
