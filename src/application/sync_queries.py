"""Reading sync statuses: one rider, pages in user id order (AIP-158), and the counts metrics use."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from application.errors import InvalidArgument, SyncStatusNotFound
from application.ports import Clock, SyncStateStore, TokenStore
from application.validation import MAX_USER_ID, validate_user_id
from domain.sync_state import SyncState, SyncStatus

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
EXPIRY_HORIZON = timedelta(hours=24)
# An issued token is about 60 characters; the cap also bounds how deep its JSON can nest.
MAX_PAGE_TOKEN_CHARS = 256


@dataclass(frozen=True, slots=True)
class SyncStatusPage:
    statuses: tuple[SyncStatus, ...]
    next_page_token: str  # "" on the last page


@dataclass(frozen=True, slots=True)
class SyncOverview:
    """Riders per state, and riders whose access token expired or expires within 24 h (None when
    not counted this time: on MySQL that count scans the whole token table)."""

    by_state: dict[SyncState, int]
    tokens_expiring: int | None


class SyncQueries:
    def __init__(self, store: SyncStateStore, tokens: TokenStore, clock: Clock) -> None:
        self._store = store
        self._tokens = tokens
        self._clock = clock

    async def get(self, user_id: int) -> SyncStatus:
        status = await self._store.get(validate_user_id(user_id))
        if status is None:
            raise SyncStatusNotFound(user_id)
        return status

    async def page(self, state: SyncState | None, page_size: int, page_token: str) -> SyncStatusPage:
        """A page after the token's user id. Page size 0 means the default; above the maximum it is
        lowered to it (AIP-158). A token is valid only with the filter that produced it."""
        if page_size < 0:
            raise InvalidArgument("page_size", f"must be >= 0, got {page_size}")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = _decode_token(page_token, state) if page_token else 0
        rows = await self._store.list_after(after, size + 1, state)
        statuses = tuple(rows[:size])
        more = len(rows) > size
        return SyncStatusPage(statuses, _encode_token(statuses[-1].user_id, state) if more else "")

    async def overview(self, *, count_tokens: bool = True) -> SyncOverview:
        by_state = await self._store.count_by_state()
        if not count_tokens:
            return SyncOverview(by_state, tokens_expiring=None)
        horizon = datetime.fromtimestamp(self._clock.now(), UTC) + EXPIRY_HORIZON
        return SyncOverview(by_state, await self._tokens.count_tokens_expiring_before(horizon))


def _encode_token(after_user_id: int, state: SyncState | None) -> str:
    text = json.dumps({"after": after_user_id, "state": state.value if state else ""})
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_token(token: str, state: SyncState | None) -> int:
    if len(token) > MAX_PAGE_TOKEN_CHARS:
        raise InvalidArgument(
            "page_token", f"not a token this service issued (over {MAX_PAGE_TOKEN_CHARS} characters)"
        )
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after, token_state = decoded["after"], decoded["state"]
    except (ValueError, binascii.Error, KeyError, TypeError):
        raise InvalidArgument("page_token", "not a token this service issued") from None
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_USER_ID:
        raise InvalidArgument("page_token", "not a token this service issued")
    if token_state != (state.value if state else ""):
        raise InvalidArgument(
            "page_token", "was issued for another state filter; keep the filter across pages"
        )
    return after
