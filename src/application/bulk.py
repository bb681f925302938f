"""Bulk runs (bootstrap, refresh stale): bounded concurrency over a stream of user ids, one
user's failure never stops the others, progress yielded as results complete, memory flat."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field

from application.errors import ApplicationError, InternalError
from application.notices import BulkJob, BulkSummary, FreeTicketDigest
from application.ports import BulkRunTrace
from application.results import BulkProgress, RefreshResult, Skipped
from domain.sync_state import SkipReason

_SAMPLE_FAILED = 20
_STOP = object()
_Finished = tuple[int, RefreshResult | Skipped | None, ApplicationError | None]  # user 0: workers ended
RefreshOne = Callable[[int], Awaitable[RefreshResult | Skipped]]
Halted = Callable[[], str]
Announce = Callable[[BulkSummary], Awaitable[None]]
Paused = Callable[[], Awaitable[None]]


async def _never_paused() -> None:
    return None


class Untraced:
    """The BulkTracer when tracing is off: no span, nothing recorded."""

    def start_run(self, job: BulkJob, total: int) -> BulkRunTrace:
        return self

    def rider(self, user_id: int) -> contextlib.AbstractContextManager[object]:
        return _NO_SPAN

    def end(self) -> None:
        pass


_NO_SPAN = contextlib.nullcontext()


async def run_bulk(
    job: BulkJob,
    user_ids: AsyncGenerator[int, None],
    total: int,
    concurrency: int,
    refresh_one: RefreshOne,
    announce: Announce,
    halted: Halted = lambda: "",
    paused: Paused = _never_paused,
) -> AsyncGenerator[BulkProgress, None]:
    """Yield one BulkProgress per user. Closing the generator (client cancel) stops new work:
    the feeder and the workers are cancelled before it returns. Once `halted()` gives a reason,
    no new user is started and a last event carries the reason. A worker awaits `paused()`
    before it starts a user (a store blip holds new users back). At the end `announce` gets
    the run's summary, when there is news: failures, an early end, or free tickets found."""
    finished: asyncio.Queue[_Finished] = asyncio.Queue(maxsize=concurrency)
    feeder, tasks = _start(user_ids, concurrency, (refresh_one, halted, paused), finished)
    tally = _Tally()
    completed = False
    try:
        while (item := await finished.get())[0] != 0:
            yield tally.progress(*item, total=total, more_ready=not finished.empty())
        await feeder  # surface a failure of the id stream itself (e.g. store unavailable)
        if stopped := halted():
            yield tally.stopped(stopped, total=total)
        completed = True
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        stopped = halted()
        if tally.failed or not completed or stopped or tally.free_tickets.riders:
            summary = tally.summary(job, total=total, completed=completed, stopped=stopped)
            # A cancelled stream must still report once; shield so the notice is not cut off.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(announce(summary))


def _start(
    user_ids: AsyncGenerator[int, None],
    concurrency: int,
    hooks: tuple[RefreshOne, Halted, Paused],
    finished: asyncio.Queue[_Finished],
) -> tuple[asyncio.Task[None], list[asyncio.Task[None]]]:
    """The feeder (ids -> pending), `concurrency` workers (pending -> finished) and a closer that
    puts the end marker on `finished` once every worker has stopped. Returns the feeder and all."""
    refresh_one, halted, paused = hooks
    pending: asyncio.Queue[object] = asyncio.Queue(maxsize=concurrency)

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
            await paused()
            if halted():
                continue  # drain: the users already queued are not started either
            await finished.put(await _refresh(item, refresh_one))

    async def close_when_workers_end(workers: list[asyncio.Task[None]]) -> None:
        await asyncio.gather(*workers, return_exceptions=True)
        await finished.put((0, None, None))

    feeder = asyncio.create_task(feed())
    workers = [asyncio.create_task(work()) for _ in range(concurrency)]
    return feeder, [feeder, *workers, asyncio.create_task(close_when_workers_end(workers))]


async def _refresh(user_id: int, refresh_one: RefreshOne) -> _Finished:
    try:
        return user_id, await refresh_one(user_id), None
    except ApplicationError as error:
        return user_id, None, error
    except Exception as unexpected:  # isolate one user's bug; the transport logs it once
        return user_id, None, InternalError(unexpected)


@dataclass
class _Tally:
    """Running totals of one run: what each progress event and the final summary report."""

    done: int = 0
    failed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    skips: Counter[SkipReason] = field(default_factory=Counter)
    sample: list[int] = field(default_factory=list)
    free_tickets: FreeTicketDigest = field(default_factory=FreeTicketDigest)

    def progress(
        self,
        user_id: int,
        result: RefreshResult | Skipped | None,
        error: ApplicationError | None,
        *,
        total: int,
        more_ready: bool = False,
    ) -> BulkProgress:
        self.done += 1
        skipped = result if isinstance(result, Skipped) else None
        if isinstance(result, RefreshResult):
            self.free_tickets.add(user_id, result.unannounced_free_tickets)
        if skipped is not None:
            self.skips[skipped.reason] += 1
        if error is not None:
            self.failed += 1
            self.reasons[type(error).__name__] += 1
            if len(self.sample) < _SAMPLE_FAILED:
                self.sample.append(user_id)
        return BulkProgress(
            user_id,
            result if isinstance(result, RefreshResult) else None,
            error,
            self.done,
            max(total, self.done),
            self.failed,
            skipped=skipped,
            skipped_by_reason=dict(self.skips),
            more_ready=more_ready,
        )

    def stopped(self, reason: str, *, total: int) -> BulkProgress:
        """The last event of a run that `halted` stopped early."""
        return BulkProgress(
            None,
            None,
            None,
            self.done,
            max(total, self.done),
            self.failed,
            skipped_by_reason=dict(self.skips),
            stopped=reason,
        )

    def summary(self, job: BulkJob, *, total: int, completed: bool, stopped: str) -> BulkSummary:
        return BulkSummary(
            job=job,
            total=max(total, self.done),
            done=self.done,
            failed=self.failed,
            failures_by_reason=dict(self.reasons),
            sample_failed_user_ids=tuple(self.sample),
            cancelled=not completed,
            skipped_by_reason={reason.value: count for reason, count in self.skips.items()},
            stopped=stopped,
            free_tickets=tuple(self.free_tickets.riders),
            more_free_ticket_riders=self.free_tickets.more,
        )
