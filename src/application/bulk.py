"""Bulk runs (bootstrap, refresh stale): bounded concurrency over a stream of user ids, one
user's failure never stops the others, progress yielded as results complete, memory flat."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable

from application.errors import ApplicationError, InternalError
from application.ports import BulkJob, BulkSummary, Notifier
from application.results import BulkProgress, RefreshResult, Skipped
from domain.sync_state import SkipReason

_SAMPLE_FAILED = 20
_STOP = object()


async def run_bulk(
    job: BulkJob,
    user_ids: AsyncGenerator[int, None],
    total: int,
    concurrency: int,
    refresh_one: Callable[[int], Awaitable[RefreshResult | Skipped]],
    notifier: Notifier,
    halted: Callable[[], str] = lambda: "",
) -> AsyncGenerator[BulkProgress, None]:
    """Yield one BulkProgress per user. Closing the generator (client cancel) stops new work:
    the feeder and the workers are cancelled before it returns. Once `halted()` gives a reason,
    no new user is started and a last event carries the reason."""
    pending: asyncio.Queue[object] = asyncio.Queue(maxsize=concurrency)
    finished: asyncio.Queue[tuple[int, RefreshResult | Skipped | None, ApplicationError | None]] = (
        asyncio.Queue(maxsize=concurrency)
    )

    async def feed() -> None:
        try:
            async for user_id in user_ids:
                if halted():
                    break
                await pending.put(user_id)
        except asyncio.CancelledError:
            raise  # torn down with the workers: a _STOP put would wait forever on a full queue
        except BaseException:
            await stop_workers()  # the id stream failed: workers finish, then the run reports it
            raise
        else:
            await stop_workers()
        finally:
            await user_ids.aclose()  # release the store cursor promptly

    async def stop_workers() -> None:
        for _ in range(concurrency):
            await pending.put(_STOP)

    async def work() -> None:
        while (item := await pending.get()) is not _STOP:
            assert isinstance(item, int)
            if halted():
                continue  # drain: the users already queued are not started either
            try:
                await finished.put((item, await refresh_one(item), None))
            except ApplicationError as error:
                await finished.put((item, None, error))
            except Exception as unexpected:  # isolate one user's bug; the transport logs it once
                await finished.put((item, None, InternalError(unexpected)))

    async def close_when_workers_end(workers: list[asyncio.Task[None]]) -> None:
        await asyncio.gather(*workers, return_exceptions=True)
        await finished.put((0, None, None))  # sentinel: user id 0 is never valid

    tasks: list[asyncio.Task[None]] = [asyncio.create_task(feed())]
    workers = [asyncio.create_task(work()) for _ in range(concurrency)]
    tasks += workers
    tasks.append(asyncio.create_task(close_when_workers_end(workers)))

    done = failed = 0
    reasons: Counter[str] = Counter()
    skips: Counter[SkipReason] = Counter()
    sample: list[int] = []
    completed = False
    try:
        while True:
            user_id, result, error = await finished.get()
            if user_id == 0:
                break
            done += 1
            skipped = result if isinstance(result, Skipped) else None
            if skipped is not None:
                skips[skipped.reason] += 1
            if error is not None:
                failed += 1
                reasons[type(error).__name__] += 1
                if len(sample) < _SAMPLE_FAILED:
                    sample.append(user_id)
            refreshed = result if isinstance(result, RefreshResult) else None
            yield BulkProgress(
                user_id,
                refreshed,
                error,
                done,
                max(total, done),
                failed,
                skipped=skipped,
                skipped_by_reason=dict(skips),
            )
        await tasks[0]  # surface a failure of the id stream itself (e.g. store unavailable)
        if stopped := halted():
            yield BulkProgress(
                None,
                None,
                None,
                done,
                max(total, done),
                failed,
                skipped_by_reason=dict(skips),
                stopped=stopped,
            )
        completed = True
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        stopped = halted()
        if failed or not completed or stopped:
            summary = BulkSummary(
                job=job,
                total=max(total, done),
                done=done,
                failed=failed,
                failures_by_reason=dict(reasons),
                sample_failed_user_ids=tuple(sample),
                cancelled=not completed,
                skipped_by_reason={reason.value: count for reason, count in skips.items()},
                stopped=stopped,
            )
            # A cancelled stream must still report once; shield so the notice is not cut off.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(notifier.bulk_run_finished(summary))
