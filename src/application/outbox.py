"""Records a refresh hands to other stores, kept beside the cache until a relay delivers them."""

from __future__ import annotations

import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from application.notices import Notice
from domain.changes import PassChange
from domain.model import TicketLogEntry


class Target(enum.StrEnum):
    TICKET_LOG = "ticket_log"
    REFRESH_LOG = "refresh_log"
    TOKEN = "token"
    CHANGE_FEED = "change_feed"  # where the store relays the feed (MongoDB: no multi-document write)
    SLACK = "slack"


#: A bulk run's notice belongs to no rider: stores keep it beside rotated tokens, not in a cache.
RUN_NOTICE_USER_ID = 0


@dataclass(frozen=True, slots=True)
class RotatedToken:
    """Tokens Bytemark issued in a refresh-token exchange (plain here; stores keep them encrypted)."""

    access_token: str
    refresh_token: str | None
    expires_at: datetime | None

    def __repr__(self) -> str:  # never print secrets
        return f"RotatedToken(access_token=***, refresh_token=***, expires_at={self.expires_at})"


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One row to deliver. `record_id` (24 hex digits, usable as a MongoDB ObjectId) is the
    idempotency key: a target that has seen it once ignores it after."""

    record_id: str
    target: Target
    user_id: int
    created_at: int
    entry: TicketLogEntry | None = None
    token: RotatedToken | None = None
    changes: tuple[PassChange, ...] = ()
    notice: Notice | None = None

    @property
    def stands_alone(self) -> bool:
        """Stored on its own (`Outbox.add`), not with a cache write."""
        return self.target is Target.TOKEN or self.user_id == RUN_NOTICE_USER_ID


def new_record_id() -> str:
    return secrets.token_hex(12)


def ticket_log_record(entry: TicketLogEntry, now: int) -> OutboxRecord:
    return OutboxRecord(new_record_id(), Target.TICKET_LOG, entry.user_id, now, entry=entry)


def free_ticket_reward_record(user_id: int, now: int) -> OutboxRecord:
    return OutboxRecord(new_record_id(), Target.REFRESH_LOG, user_id, now)


def token_record(user_id: int, token: RotatedToken, now: int) -> OutboxRecord:
    return OutboxRecord(new_record_id(), Target.TOKEN, user_id, now, token=token)


def change_feed_record(user_id: int, changes: Sequence[PassChange], now: int) -> OutboxRecord:
    """The feed's changes of one cache write, appended to the feed as one batch."""
    return OutboxRecord(new_record_id(), Target.CHANGE_FEED, user_id, now, changes=tuple(changes))


def notice_record(user_id: int, notice: Notice, now: int) -> OutboxRecord:
    """A Slack notice: a rider's (stored with its cache write) or a bulk run's (RUN_NOTICE_USER_ID)."""
    return OutboxRecord(new_record_id(), Target.SLACK, user_id, now, notice=notice)


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    """Pending records by target, and when the oldest of them was written (epoch s, or None)."""

    pending: dict[Target, int]
    oldest_created_at: int | None
