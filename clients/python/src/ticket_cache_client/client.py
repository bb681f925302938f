"""TicketCacheClient: typed async calls with a deadline on each, bearer auth, TLS and retries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from types import TracebackType

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from ticket_cache_client.channel import DEFAULT_RETRY, DEFAULT_TARGET, RetryPolicy, TlsFiles, open_channel
from ticket_cache_client.connection import wait_connected
from ticket_cache_client.errors import raising_details

#: Deadlines when the caller gives none: unary refreshes call Bytemark; streams can run for hours.
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_STREAM_TIMEOUT_SECONDS = 6 * 3600.0


class TicketCacheClient:
    """One channel to the service. Create it inside the running event loop; close it (or use
    `async with`) when done. Every call has a deadline: its `deadline` argument (seconds), else
    `timeout` (unary calls) or `stream_timeout` (streams). A failed call raises TicketCacheError
    (a grpc.aio.AioRpcError with the service's `reason`, `field_violations` and `retry_delay`)."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        token: str | None = None,
        tls: TlsFiles | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        stream_timeout: float = DEFAULT_STREAM_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        keepalive_seconds: float = 60.0,
        load_balancing: str = "round_robin",
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.stream_timeout = stream_timeout
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        self._channel = open_channel(
            target, tls=tls, retry=retry, keepalive_seconds=keepalive_seconds, load_balancing=load_balancing
        )
        self.stub = pb_grpc.TicketCacheServiceStub(self._channel)

    def __repr__(self) -> str:  # never print the token
        return f"TicketCacheClient(target={self.target!r}, auth={bool(self._metadata)})"

    async def __aenter__(self) -> TicketCacheClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def wait_ready(self, deadline: float | None = None) -> None:
        """Wait until the channel connects. Raises ServerUnreachable naming gRPC's reason: at once
        for a failed TLS handshake (wrong CA or certificate), else once the deadline passes."""
        await wait_connected(self._channel, self.target, self._deadline(deadline))

    def _deadline(self, deadline: float | None) -> float:
        return self.timeout if deadline is None else deadline

    async def get(
        self,
        user_id: int,
        *,
        view: pb.CacheView.ValueType = pb.CACHE_VIEW_FULL,
        deadline: float | None = None,
    ) -> pb.TicketCache:
        request = pb.GetTicketCacheRequest(user_id=user_id, view=view)
        with raising_details():
            response: pb.GetTicketCacheResponse = await self.stub.GetTicketCache(
                request, timeout=self._deadline(deadline), metadata=self._metadata
            )
        return response.cache

    async def check(
        self,
        user_id: int,
        *,
        include_cache: bool = False,
        dry_run: bool = False,
        deadline: float | None = None,
    ) -> pb.RefreshResult:
        """`dry_run`: what the check would do (result.dry_run), nothing written."""
        request = pb.CheckTicketCacheRequest(user_id=user_id, include_cache=include_cache, dry_run=dry_run)
        with raising_details():
            response: pb.CheckTicketCacheResponse = await self.stub.CheckTicketCache(
                request, timeout=self._deadline(deadline), metadata=self._metadata
            )
        return response.result

    async def build(
        self, user_id: int, *, include_cache: bool = False, deadline: float | None = None
    ) -> pb.RefreshResult:
        request = pb.BuildTicketCacheRequest(user_id=user_id, include_cache=include_cache)
        with raising_details():
            response: pb.BuildTicketCacheResponse = await self.stub.BuildTicketCache(
                request, timeout=self._deadline(deadline), metadata=self._metadata
            )
        return response.result

    async def update(
        self, user_id: int, *, include_cache: bool = False, deadline: float | None = None
    ) -> pb.RefreshResult:
        request = pb.UpdateTicketCacheRequest(user_id=user_id, include_cache=include_cache)
        with raising_details():
            response: pb.UpdateTicketCacheResponse = await self.stub.UpdateTicketCache(
                request, timeout=self._deadline(deadline), metadata=self._metadata
            )
        return response.result

    async def check_timeout(
        self,
        user_id: int,
        *,
        max_age_seconds: int = 0,
        include_cache: bool = False,
        deadline: float | None = None,
    ) -> pb.RefreshResult:
        """Refresh only when the cache is older than `max_age_seconds` (0: the server default)."""
        request = pb.CheckTicketCacheTimeoutRequest(
            user_id=user_id, max_age_seconds=max_age_seconds, include_cache=include_cache
        )
        with raising_details():
            response: pb.CheckTicketCacheTimeoutResponse = await self.stub.CheckTicketCacheTimeout(
                request, timeout=self._deadline(deadline), metadata=self._metadata
            )
        return response.result

    async def bootstrap(
        self, *, concurrency: int = 0, max_batch: int = 0, deadline: float | None = None
    ) -> AsyncIterator[pb.BuildCacheIfEmptyResponse]:
        """Progress events of BuildCacheIfEmpty; leaving the loop early cancels the run. With
        `max_batch` riders already finished share an event (`per_rider` reads them one by one)."""
        call = self.stub.BuildCacheIfEmpty(
            pb.BuildCacheIfEmptyRequest(concurrency=concurrency, max_batch=max_batch),
            timeout=self.stream_timeout if deadline is None else deadline,
            metadata=self._metadata,
        )
        try:
            with raising_details():
                async for event in call:
                    yield event
        finally:
            call.cancel()  # a no-op once the stream ended; stops the server's work otherwise

    async def refresh_stale(
        self,
        *,
        max_age_seconds: int = 0,
        concurrency: int = 0,
        shard_index: int = 0,
        shard_count: int = 0,
        user_ids: Iterable[int] = (),
        max_batch: int = 0,
        dry_run: bool = False,
        deadline: float | None = None,
    ) -> AsyncIterator[pb.RefreshStaleCachesResponse]:
        """Progress events of RefreshStaleCaches; leaving the loop early cancels the run. With
        `max_batch` riders already finished share an event (`per_rider` reads them one by one)."""
        request = pb.RefreshStaleCachesRequest(
            max_age_seconds=max_age_seconds,
            concurrency=concurrency,
            shard_index=shard_index,
            shard_count=shard_count,
            user_ids=list(user_ids),
            max_batch=max_batch,
            dry_run=dry_run,
        )
        call = self.stub.RefreshStaleCaches(
            request, timeout=self.stream_timeout if deadline is None else deadline, metadata=self._metadata
        )
        try:
            with raising_details():
                async for event in call:
                    yield event
        finally:
            call.cancel()

    async def purge_orphans(
        self, *, dry_run: bool = False, deadline: float | None = None
    ) -> pb.PurgeOrphanedCachesResponse:
        """The users whose orphaned caches were removed (or would be, with `dry_run`)."""
        with raising_details():
            response: pb.PurgeOrphanedCachesResponse = await self.stub.PurgeOrphanedCaches(
                pb.PurgeOrphanedCachesRequest(dry_run=dry_run),
                timeout=self._deadline(deadline),
                metadata=self._metadata,
            )
        return response

    async def sync_status(self, user_id: int, *, deadline: float | None = None) -> pb.SyncStatus:
        """How the rider's refreshes stand (NOT_FOUND for a rider never refreshed)."""
        with raising_details():
            response: pb.GetSyncStatusResponse = await self.stub.GetSyncStatus(
                pb.GetSyncStatusRequest(user_id=user_id),
                timeout=self._deadline(deadline),
                metadata=self._metadata,
            )
        return response.status

    async def sync_statuses(
        self,
        *,
        state: pb.SyncState.ValueType = pb.SYNC_STATE_UNSPECIFIED,
        page_size: int = 500,
        deadline: float | None = None,
    ) -> AsyncIterator[pb.SyncStatus]:
        """Every rider's sync state (only `state`, when given), in user id order, page by page;
        `deadline` bounds each page's call."""
        page_token = ""
        while True:
            request = pb.ListSyncStatusesRequest(state=state, page_size=page_size, page_token=page_token)
            with raising_details():
                response: pb.ListSyncStatusesResponse = await self.stub.ListSyncStatuses(
                    request, timeout=self._deadline(deadline), metadata=self._metadata
                )
            for status in response.statuses:
                yield status
            page_token = response.next_page_token
            if not page_token:
                return

    async def watch(
        self, *, cursor: str = "", user_ids: Iterable[int] = (), deadline: float | None = None
    ) -> AsyncIterator[pb.WatchChangesResponse]:
        """The change feed: batches of pass changes, from `cursor` (empty: from now), live until
        the deadline (`stream_timeout` by default); leaving the loop cancels the stream."""
        call = self.stub.WatchChanges(
            pb.WatchChangesRequest(start_cursor=cursor, user_ids=list(user_ids)),
            timeout=self.stream_timeout if deadline is None else deadline,
            metadata=self._metadata,
        )
        try:
            with raising_details():
                async for batch in call:
                    yield batch
        finally:
            call.cancel()
