"""TicketCacheService for connectrpc: each method runs the gRPC port's servicer with a Connect call
context, so both ports share one implementation (use cases, converters, error mapping, deadlines)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from connectrpc.request import RequestContext

from adapters.driving.grpc_api.servicer import TicketCacheServicer
from adapters.driving.http_api.call_context import ConnectCallContext

Unary = Callable[["ConnectTicketCacheService", Any, RequestContext[Any, Any]], Coroutine[Any, Any, Any]]
ServerStream = Callable[["ConnectTicketCacheService", Any, RequestContext[Any, Any]], AsyncIterator[Any]]


def _unary(name: str) -> Unary:
    async def call(self: ConnectTicketCacheService, request: Any, ctx: RequestContext[Any, Any]) -> Any:
        return await getattr(self.servicer, name)(request, ConnectCallContext(ctx))

    call.__name__ = name
    return call


def _server_stream(name: str) -> ServerStream:
    def stream(
        self: ConnectTicketCacheService, request: Any, ctx: RequestContext[Any, Any]
    ) -> AsyncIterator[Any]:
        responses: AsyncIterator[Any] = getattr(self.servicer, name)(request, ConnectCallContext(ctx))
        return responses

    stream.__name__ = name
    return stream


class ConnectTicketCacheService:
    """The generated `TicketCacheService` protocol (ticket_cache_connect.py), method by method."""

    def __init__(self, servicer: TicketCacheServicer) -> None:
        self.servicer = servicer

    get_ticket_cache = _unary("GetTicketCache")
    build_ticket_cache = _unary("BuildTicketCache")
    check_ticket_cache = _unary("CheckTicketCache")
    update_ticket_cache = _unary("UpdateTicketCache")
    check_ticket_cache_timeout = _unary("CheckTicketCacheTimeout")
    purge_orphaned_caches = _unary("PurgeOrphanedCaches")
    get_sync_status = _unary("GetSyncStatus")
    list_sync_statuses = _unary("ListSyncStatuses")
    build_cache_if_empty = _server_stream("BuildCacheIfEmpty")
    refresh_stale_caches = _server_stream("RefreshStaleCaches")
    watch_changes = _server_stream("WatchChanges")
