"""Bound server-side work by the caller's deadline: grpc does not pass it on by itself."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import grpc

from application.errors import DeadlineExceeded


class WithinDeadline:
    """`async with WithinDeadline(context):` cancels the block when the RPC's deadline passes
    and raises DeadlineExceeded (no deadline set: no bound). A TimeoutError from inside the
    block that is not this deadline passes through unchanged."""

    __slots__ = ("_timeout",)

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        remaining = context.time_remaining()
        self._timeout = asyncio.timeout(remaining) if remaining is not None else None

    async def __aenter__(self) -> None:
        if self._timeout is not None:
            await self._timeout.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._timeout is None:
            return
        try:
            await self._timeout.__aexit__(exc_type, exc, traceback)
        except TimeoutError as error:
            if self._timeout.expired():
                raise DeadlineExceeded() from error
            raise
