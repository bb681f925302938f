"""Users, their OAuth tokens and passes, and each user's pre-serialised response pages."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from devtools.sandbox.passes import generate_free_pass, generate_user_passes, random_uuid

Pass = dict[str, Any]
EXPIRED = "EXPIRED"


class UserCredentials(NamedTuple):
    """What the demo and tests write into the token store for one sandbox user."""

    user_id: int
    access_token: str
    refresh_token: str
    expires_at: datetime | None


class SandboxUser:
    """One rider. Passes are generated on first use, so seeding 10,000 users is instant."""

    __slots__ = (
        "user_id",
        "access_token",
        "refresh_token",
        "issued_at",
        "access_expired",
        "revoked",
        "_passes",
        "_plan",
        "_pages",
    )

    def __init__(self, user_id: int, plan: tuple[int, int, int] | None = None) -> None:
        self.user_id = user_id
        self.access_token = ""
        self.refresh_token = ""
        self.issued_at = 0.0
        self.access_expired = False  # forced by the expire-token control call
        self.revoked = False  # the grant is gone: access and refresh both fail
        self._plan = plan  # (seed, current, expired) for lazy generation
        self._passes: dict[str, Pass] | None = None if plan else {}
        # (list, status filter, page, page size) -> response body, dropped on any pass change
        self._pages: dict[tuple[str, str | None, int, int], bytes] = {}

    @property
    def passes(self) -> dict[str, Pass]:
        """All passes by uuid, in insertion order (mutate only through SandboxState)."""
        if self._passes is None:
            seed, current, expired = self._plan or (0, 0, 0)
            generated = generate_user_passes(seed, self.user_id, current, expired)
            self._passes = {p["uuid"]: p for p in generated}
        return self._passes

    def invalidate_pages(self) -> None:
        self._pages.clear()

    def page_body(self, endpoint: str, status: str | None, page: int, size: int) -> bytes:
        """The JSON body for one page of the v1 list (`endpoint` "v1": every non-EXPIRED pass)
        or of the v4 list (filtered by `status` when given); cached until the passes change."""
        key = (endpoint, status, page, size)
        body = self._pages.get(key)
        if body is None:
            if endpoint == "v1":
                selected = [p for p in self.passes.values() if p.get("status") != EXPIRED]
            elif status is None:
                selected = list(self.passes.values())
            else:
                selected = [p for p in self.passes.values() if p.get("status") == status]
            total = len(selected)
            start = (page - 1) * size
            body = orjson.dumps(
                {
                    "data": {
                        "passes": selected[start : start + size],
                        "pagination": {
                            "page": page,
                            "limit": size,
                            "total_pages": max(1, math.ceil(total / size)),
                            "total": total,
                        },
                    },
                    "errors": [],
                }
            )
            self._pages[key] = body
        return body


class SandboxState:
    """Everything the fake Bytemark knows. Single event loop, so no locking."""

    def __init__(self, *, seed: int = 0, clock: Callable[[], float] = time.time) -> None:
        self.seed = seed
        self.clock = clock
        self.users: dict[int, SandboxUser] = {}
        self._by_access: dict[str, SandboxUser] = {}
        self._by_refresh: dict[str, SandboxUser] = {}
        self._rng = random.Random(f"bytemark-sandbox-tokens:{seed}")

    @classmethod
    def seeded(
        cls,
        users: int,
        passes_per_user: int,
        expired_per_user: int,
        first_user_id: int = 1,
        seed: int = 0,
    ) -> SandboxState:
        state = cls(seed=seed)
        for user_id in range(first_user_id, first_user_id + users):
            state.add_user(user_id, passes=passes_per_user, expired=expired_per_user)
        return state

    # --- users and tokens ---

    def add_user(self, user_id: int | None = None, *, passes: int = 0, expired: int = 0) -> SandboxUser:
        """A new user with fresh tokens and generated passes; raises KeyError if the id is taken."""
        if user_id is None:
            user_id = max(self.users, default=0) + 1
        if user_id in self.users:
            raise KeyError(user_id)
        plan = (self.seed, passes, expired) if passes or expired else None
        user = SandboxUser(user_id, plan)
        self.users[user_id] = user
        self.rotate_tokens(user)
        return user

    def rotate_tokens(self, user: SandboxUser) -> None:
        """Issue a new access and refresh token; the old ones stop working (rotation)."""
        self._by_access.pop(user.access_token, None)
        self._by_refresh.pop(user.refresh_token, None)
        suffix = f"{self._rng.getrandbits(64):016x}"
        user.access_token = f"sandbox-access-{user.user_id}-{suffix}"
        user.refresh_token = f"sandbox-refresh-{user.user_id}-{self._rng.getrandbits(64):016x}"
        user.issued_at = self.clock()
        user.access_expired = False
        user.revoked = False
        self._by_access[user.access_token] = user
        self._by_refresh[user.refresh_token] = user

    def user_for_access_token(self, token: str) -> SandboxUser | None:
        return self._by_access.get(token)

    def user_for_refresh_token(self, token: str) -> SandboxUser | None:
        return self._by_refresh.get(token)

    def access_token_valid(self, user: SandboxUser, token_ttl_seconds: float) -> bool:
        if user.revoked or user.access_expired:
            return False
        return token_ttl_seconds <= 0 or self.clock() - user.issued_at < token_ttl_seconds

    def expire_access_token(self, user_id: int) -> None:
        self.users[user_id].access_expired = True

    def revoke(self, user_id: int) -> None:
        """The rider revoked the grant: the access token answers 401, refresh invalid_grant."""
        self.users[user_id].revoked = True

    def credentials(self, token_ttl_seconds: float = 0) -> list[UserCredentials]:
        """(user_id, access_token, refresh_token, expires_at) per live user, to seed a token store."""
        return [self.user_credentials(user_id, token_ttl_seconds) for user_id in self.users]

    def user_credentials(self, user_id: int, token_ttl_seconds: float = 0) -> UserCredentials:
        user = self.users[user_id]
        expires_at = (
            datetime.fromtimestamp(user.issued_at + token_ttl_seconds, UTC) if token_ttl_seconds > 0 else None
        )
        return UserCredentials(user.user_id, user.access_token, user.refresh_token, expires_at)

    # --- passes ---

    def add_pass(self, user_id: int, payload: Mapping[str, Any] | None = None) -> Pass:
        """Store `payload` as given (a uuid is generated when absent), or a new free-ticket pass
        when `payload` is None. Raises KeyError for an unknown user, ValueError for a taken uuid."""
        user = self.users[user_id]
        if payload is None:
            new_pass = generate_free_pass(self._rng, datetime.fromtimestamp(self.clock(), UTC))
        else:
            new_pass = dict(payload)
            new_pass.setdefault("uuid", random_uuid(self._rng))
        uuid = str(new_pass["uuid"])
        if uuid in user.passes:
            raise ValueError(f"pass {uuid} already exists")
        user.passes[uuid] = new_pass
        user.invalidate_pages()
        return new_pass

    def update_pass(self, user_id: int, uuid: str, changes: Mapping[str, Any]) -> Pass:
        """Shallow-merge `changes` into the pass; raises KeyError for an unknown user or pass."""
        user = self.users[user_id]
        updated = {**user.passes[uuid], **changes, "uuid": uuid}
        user.passes[uuid] = updated
        user.invalidate_pages()
        return updated

    def remove_pass(self, user_id: int, uuid: str) -> None:
        user = self.users[user_id]
        del user.passes[uuid]
        user.invalidate_pages()
