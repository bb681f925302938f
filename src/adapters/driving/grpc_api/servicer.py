"""TicketCacheService: proto request -> use case -> proto response, nothing more.

Range validation lives in the use cases (they raise InvalidArgument naming the field);
errors become status codes in adapters.driving.grpc_api.errors; 0 in max_age_seconds or
concurrency means "server default" and is passed on as None.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeAlias, TypeVar

import grpc

from adapters.driving.grpc_api.cache_encoding import CacheEncoder
from adapters.driving.grpc_api.change_events import change_batch_response
from adapters.driving.grpc_api.converters import (
    ProtoConverter,
    cache_view,
    max_batch,
    purge_response,
    resolve_view,
    sync_state_filter,
    sync_status_page_response,
    write_sync_status,
)
from adapters.driving.grpc_api.deadlines import WithinDeadline
from adapters.driving.grpc_api.drain import Drain, Draining
from adapters.driving.grpc_api.error_catalogue import SERVER_SHUTTING_DOWN
from adapters.driving.grpc_api.errors import AbortOnError, Failure, abort_with
from application.api import TicketCacheApi
from application.errors import InternalError
from application.results import BulkProgress, RefreshResult
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
_RefreshRequest: TypeAlias = (
    pb.BuildTicketCacheRequest
    | pb.CheckTicketCacheRequest
    | pb.UpdateTicketCacheRequest
    | pb.CheckTicketCacheTimeoutRequest
)
_RefreshResponse = TypeVar(
    "_RefreshResponse",
    pb.BuildTicketCacheResponse,
    pb.CheckTicketCacheResponse,
    pb.UpdateTicketCacheResponse,
    pb.CheckTicketCacheTimeoutResponse,
)
_BulkResponse = TypeVar("_BulkResponse", pb.BuildCacheIfEmptyResponse, pb.RefreshStaleCachesResponse)


class TicketCacheServicer(pb_grpc.TicketCacheServiceServicer):
    def __init__(
        self, use_cases: TicketCacheApi, converter: ProtoConverter, drain: Drain | None = None
    ) -> None:
        self._use_cases = use_cases
        self._converter = converter
        self._drain = drain or Drain()

    @property
    def drain(self) -> Drain:
        """Started at shutdown: open streams end with UNAVAILABLE (see drain.py)."""
        return self._drain

    @property
    def encoder(self) -> CacheEncoder:
        return self._converter.encoder

    async def GetTicketCache(
        self, request: pb.GetTicketCacheRequest, context: Context
    ) -> pb.GetTicketCacheResponse:
        async with AbortOnError(context), WithinDeadline(context):
            view = resolve_view(request.view)
            cache = await self._use_cases.get_cache(request.user_id)
            # Possibly shared with other calls for the same cache object: never modified.
            return self._converter.encoder.response_for(cache, view)

    async def BuildTicketCache(
        self, request: pb.BuildTicketCacheRequest, context: Context
    ) -> pb.BuildTicketCacheResponse:
        return await self._refresh(
            request, context, pb.BuildTicketCacheResponse(), lambda: self._use_cases.build(request.user_id)
        )

    async def CheckTicketCache(
        self, request: pb.CheckTicketCacheRequest, context: Context
    ) -> pb.CheckTicketCacheResponse:
        return await self._refresh(
            request,
            context,
            pb.CheckTicketCacheResponse(),
            lambda: self._use_cases.check(request.user_id, dry_run=request.dry_run),
        )

    async def UpdateTicketCache(
        self, request: pb.UpdateTicketCacheRequest, context: Context
    ) -> pb.UpdateTicketCacheResponse:
        return await self._refresh(
            request, context, pb.UpdateTicketCacheResponse(), lambda: self._use_cases.update(request.user_id)
        )

    async def CheckTicketCacheTimeout(
        self, request: pb.CheckTicketCacheTimeoutRequest, context: Context
    ) -> pb.CheckTicketCacheTimeoutResponse:
        return await self._refresh(
            request,
            context,
            pb.CheckTicketCacheTimeoutResponse(),
            lambda: self._use_cases.check_timeout(request.user_id, request.max_age_seconds or None),
        )

    async def _refresh(
        self,
        request: _RefreshRequest,
        context: Context,
        response: _RefreshResponse,
        run: Callable[[], Awaitable[RefreshResult]],
    ) -> _RefreshResponse:
        """The shape of every unary refresh: run the use case within the deadline, map errors
        to status codes, and put the result (and the cache in the asked view) in `response`."""
        async with AbortOnError(context), WithinDeadline(context):
            view = cache_view(request.view, request.include_cache)
            result = await run()
            self._converter.write_refresh_result(response.result, result, view)
            return response

    async def BuildCacheIfEmpty(
        self, request: pb.BuildCacheIfEmptyRequest, context: Context
    ) -> AsyncIterator[pb.BuildCacheIfEmptyResponse]:
        # No WithinDeadline here: grpc cancels a stream at its deadline by itself, and a
        # timeout scope must not span the generator's yields.
        async with AbortOnError(context):
            view = cache_view(request.view, request.include_cache)
            batch = max_batch(request.max_batch)
            # Closed on every exit (done, error, client cancel, shutdown) so the run starts no new work.
            async with aclosing(self._use_cases.build_if_empty(request.concurrency or None)) as events:
                responses = self._responses(
                    events, context, "BuildCacheIfEmpty", view, batch, pb.BuildCacheIfEmptyResponse
                )
                async with aclosing(responses):
                    async for response in responses:
                        yield response

    async def RefreshStaleCaches(
        self, request: pb.RefreshStaleCachesRequest, context: Context
    ) -> AsyncIterator[pb.RefreshStaleCachesResponse]:
        async with AbortOnError(context):
            view = cache_view(request.view, request.include_cache)
            batch = max_batch(request.max_batch)
            stream = self._use_cases.refresh_stale(
                max_age_seconds=request.max_age_seconds or None,
                concurrency=request.concurrency or None,
                shard_index=request.shard_index,
                shard_count=request.shard_count,
                user_ids=list(request.user_ids),
                dry_run=request.dry_run,
            )
            async with aclosing(stream) as events:
                responses = self._responses(
                    events, context, "RefreshStaleCaches", view, batch, pb.RefreshStaleCachesResponse
                )
                async with aclosing(responses):
                    async for response in responses:
                        yield response

    async def _responses(
        self,
        events: AsyncIterator[BulkProgress],
        context: Context,
        method: str,
        view: pb.CacheView.ValueType | None,
        batch: int,
        response_type: Callable[[], _BulkResponse],
    ) -> AsyncGenerator[_BulkResponse, None]:
        """One response per event, or with `batch` > 0 the users already finished together (up to
        `batch` per response): fewer, larger messages, each a write through gRPC's core."""
        pending: _BulkResponse | None = None
        done = 0
        while (progress := await self._next(events, context, method, done)) is not None:
            done = progress.done
            if batch and progress.user_id is not None:
                pending = pending or response_type()
                event = self._converter.add_to_batch(pending, progress, view)
                _log_failure(method, event, progress)
                if not progress.more_ready or len(pending.batch) >= batch:
                    yield pending
                    pending = None
                continue
            if pending is not None:
                yield pending
                pending = None
            response = response_type()
            if progress.skipped_not_empty and isinstance(response, pb.BuildCacheIfEmptyResponse):
                response.skipped_not_empty = True
            self._converter.write_progress(response, progress, view)
            _log_failure(method, response, progress)
            yield response
        if pending is not None:
            yield pending

    async def _next(
        self, events: AsyncIterator[BulkProgress], context: Context, method: str, done: int
    ) -> BulkProgress | None:
        """The stream's next event, None at its end; at server shutdown, end it with UNAVAILABLE."""
        try:
            return await self._drain.next(events)
        except StopAsyncIteration:
            return None
        except Draining:
            log.info("%s: ended by server shutdown after %d riders", method, done)
            message = (
                f"server shutting down: {method} stopped after {done} riders; call again to continue "
                "(riders it already handled are skipped)"
            )
            await abort_with(context, Failure(SERVER_SHUTTING_DOWN, message))

    async def WatchChanges(
        self, request: pb.WatchChangesRequest, context: Context
    ) -> AsyncIterator[pb.WatchChangesResponse]:
        # Reads the store at its own pace: a slow subscriber only delays its own stream.
        async with AbortOnError(context):
            changes = self._use_cases.watch_changes(request.start_cursor, list(request.user_ids))
            async with aclosing(changes) as batches:
                while True:
                    try:
                        batch = await self._drain.next(batches)
                    except Draining:
                        message = "server shutting down: watch again from the last cursor received"
                        await abort_with(context, Failure(SERVER_SHUTTING_DOWN, message))
                    yield change_batch_response(batch)

    async def PurgeOrphanedCaches(
        self, request: pb.PurgeOrphanedCachesRequest, context: Context
    ) -> pb.PurgeOrphanedCachesResponse:
        async with AbortOnError(context), WithinDeadline(context):
            return purge_response(await self._use_cases.purge_orphans(request.dry_run))

    async def GetSyncStatus(
        self, request: pb.GetSyncStatusRequest, context: Context
    ) -> pb.GetSyncStatusResponse:
        async with AbortOnError(context), WithinDeadline(context):
            response = pb.GetSyncStatusResponse()
            write_sync_status(response.status, await self._use_cases.get_sync_status(request.user_id))
            return response

    async def ListSyncStatuses(
        self, request: pb.ListSyncStatusesRequest, context: Context
    ) -> pb.ListSyncStatusesResponse:
        async with AbortOnError(context), WithinDeadline(context):
            state = sync_state_filter(request.state)
            page = await self._use_cases.list_sync_statuses(state, request.page_size, request.page_token)
            return sync_status_page_response(page)


_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def _log_failure(
    method: str,
    event: pb.BuildCacheIfEmptyResponse | pb.RefreshStaleCachesResponse | pb.BulkUserEvent,
    progress: BulkProgress,
) -> None:
    """The one log line of a failed user: the very code and message its stream event carries,
    and the traceback when the failure was a bug."""
    if event.HasField("status"):
        code = _CODE_NAMES.get(event.status.code, str(event.status.code))
        log.warning(
            "%s: user %d failed: %s %s",
            method,
            event.user_id,
            code,
            event.status.message,
            extra={"user_id": event.user_id, "code": code},
            exc_info=progress.error if isinstance(progress.error, InternalError) else None,
        )
