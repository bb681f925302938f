"""A store's connection as a container resource: opened on first use, closed by
`shutdown_resources()`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar

from application.errors import StoreUnavailable

log = logging.getLogger(__name__)


class Connectable(Protocol):
    async def connect(self) -> None: ...

    async def close(self) -> None: ...


Store = TypeVar("Store", bound=Connectable)


@asynccontextmanager
async def connected(store: Store, *, retry_unreachable: str | None = None) -> AsyncIterator[Store]:
    """`store`, connected, and closed at the end. With `retry_unreachable` (the server's name) a
    server down at start-up is logged and the store connects on its next use instead."""
    try:
        await store.connect()
    except StoreUnavailable as exc:
        if retry_unreachable is None:
            raise
        log.warning(
            f"{retry_unreachable} not reachable at start-up; will retry on use", extra={"reason": exc.reason}
        )
    try:
        yield store
    finally:
        await store.close()
