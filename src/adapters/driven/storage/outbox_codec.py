"""Outbox records as plain documents (a SQLite JSON column, a field of a MongoDB document).
Rotated tokens are encrypted with the token store's key, as in `bytemark_tokens`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from adapters.driven.storage.crypto import TokenCipher
from adapters.driven.storage.notice_codec import notice_document, notice_from_document
from application.outbox import OutboxRecord, RotatedToken, Target
from domain.changes import ChangeKind, PassChange
from domain.model import Change, PassList, TicketLogEntry


class OutboxCodec:
    def __init__(self, cipher: TokenCipher) -> None:
        self._cipher = cipher

    def to_document(self, record: OutboxRecord) -> dict[str, Any]:
        document: dict[str, Any] = {
            "record_id": record.record_id,
            "target": record.target.value,
            "user_id": record.user_id,
            "created_at": record.created_at,
        }
        if record.entry is not None:
            document["entry"] = record.entry.to_document()
        if record.token is not None:
            token, user_id = record.token, record.user_id
            document["token"] = {
                "access_token": self._cipher.encrypt(token.access_token, user_id),
                "refresh_token": self._cipher.encrypt_optional(token.refresh_token, user_id),
                "expires_at": _epoch(token.expires_at),
            }
        if record.changes:
            document["changes"] = [change_document(change) for change in record.changes]
        if record.notice is not None:
            document["notice"] = notice_document(record.notice)
        return document

    def from_document(self, document: dict[str, Any]) -> OutboxRecord:
        user_id = int(document["user_id"])
        entry = document.get("entry")
        token = document.get("token")
        notice = document.get("notice")
        return OutboxRecord(
            record_id=str(document["record_id"]),
            target=Target(document["target"]),
            user_id=user_id,
            created_at=int(document["created_at"]),
            entry=_entry(entry) if entry is not None else None,
            token=self._token(token, user_id) if token is not None else None,
            changes=tuple(
                pass_change(user_id, int(document["created_at"]), change)
                for change in document.get("changes") or ()
            ),
            notice=notice_from_document(notice) if notice is not None else None,
        )

    def token(self, document: dict[str, Any]) -> RotatedToken:
        """The decrypted token of a TOKEN record's document."""
        return self._token(document["token"], int(document["user_id"]))

    def _token(self, stored: dict[str, Any], user_id: int) -> RotatedToken:
        expires_at = stored.get("expires_at")
        return RotatedToken(
            access_token=self._cipher.decrypt(stored["access_token"], user_id),
            refresh_token=self._cipher.decrypt_optional(stored.get("refresh_token"), user_id),
            expires_at=datetime.fromtimestamp(expires_at, UTC) if expires_at is not None else None,
        )


def change_document(change: PassChange) -> dict[str, Any]:
    """One change of a feed batch, in short keys (a batch holds one per pass of a cache write);
    user and time are the batch's."""
    return {
        "l": change.list.value,
        "u": change.pass_uuid,
        "k": change.kind.value,
        "f": change.free_ticket,
        "h": change.payload_hash,
    }


def pass_change(user_id: int, changed_at: int, document: dict[str, Any]) -> PassChange:
    return PassChange(
        user_id,
        PassList(document["l"]),
        str(document["u"]),
        ChangeKind(document["k"]),
        bool(document["f"]),
        str(document["h"]),
        changed_at,
    )


def _epoch(value: datetime | None) -> float | None:
    """Naive datetimes are UTC here, as in the token tables."""
    if value is None:
        return None
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp()


def _entry(document: dict[str, Any]) -> TicketLogEntry:
    return TicketLogEntry(
        user_id=int(document["user_id"]),
        pass_uuid=str(document["pass_uuid"]),
        list=PassList(document["list"]),
        change=Change(document["change"]),
        status=document.get("status"),
        payload=document["payload"],
        payload_hash=str(document["payload_hash"]),
        timestamp=int(document["timestamp"]),
    )
