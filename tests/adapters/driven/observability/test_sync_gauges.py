"""The periodic refresh of the sync-state gauges: a change no bulk run saw reaches them, a store
that fails one round neither stops the loop nor zeroes the gauges, and the costly token count runs
only on its own, slower period."""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import REGISTRY

from adapters.driven.observability.sync_gauges import SyncGaugeRefresher
from application.errors import StoreUnavailable
from application.sync_queries import SyncOverview
from domain.sync_state import SyncState


def gauges() -> dict[str, float]:
    def riders(state: SyncState) -> float:
        return REGISTRY.get_sample_value("ticket_cache_sync_riders", {"state": state.value}) or 0.0

    expiring = REGISTRY.get_sample_value("bytemark_tokens_expiring_riders") or 0.0
    return {**{state.value: riders(state) for state in SyncState}, "expiring": expiring}


def overview(ok: int, failing: int, auth_required: int, expiring: int) -> SyncOverview:
    counts = {SyncState.OK: ok, SyncState.FAILING: failing, SyncState.AUTH_REQUIRED: auth_required}
    return SyncOverview(by_state=counts, tokens_expiring=expiring)


class ScriptedStore:
    """Answers each round with the next overview (or raises it), recording the gauges seen before."""

    def __init__(self, *rounds: SyncOverview | Exception) -> None:
        self._rounds = list(rounds)
        self.gauges_before: list[dict[str, float]] = []
        self.counted_tokens: list[bool] = []
        self.done = asyncio.Event()

    async def overview(self, *, count_tokens: bool = True) -> SyncOverview:
        self.gauges_before.append(gauges())
        self.counted_tokens.append(count_tokens)
        if not self._rounds:
            self.done.set()
            await asyncio.Event().wait()  # no more rounds: wait to be cancelled
        answer = self._rounds.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if not count_tokens:
            return SyncOverview(answer.by_state, tokens_expiring=None)
        return answer


async def run_until_scripted_rounds_end(
    store: ScriptedStore, every_seconds: float, tokens_every_seconds: float = 0.0
) -> None:
    task = asyncio.create_task(SyncGaugeRefresher(store.overview, every_seconds, tokens_every_seconds).run())
    try:
        await asyncio.wait_for(store.done.wait(), 5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_each_round_sets_the_gauges_from_the_store_without_any_bulk_run() -> None:
    store = ScriptedStore(overview(5, 0, 0, 1), overview(4, 1, 0, 2), overview(3, 1, 1, 0))

    await run_until_scripted_rounds_end(store, every_seconds=0.01)

    after_first, after_second, after_third = store.gauges_before[1:]
    assert after_first == {"OK": 5, "FAILING": 0, "AUTH_REQUIRED": 0, "expiring": 1}
    assert after_second == {"OK": 4, "FAILING": 1, "AUTH_REQUIRED": 0, "expiring": 2}
    assert after_third == {"OK": 3, "FAILING": 1, "AUTH_REQUIRED": 1, "expiring": 0}


async def test_a_store_failure_keeps_the_last_figures_and_the_next_round_still_comes() -> None:
    store = ScriptedStore(
        overview(7, 2, 1, 3), StoreUnavailable("sync state store", "database is locked"), overview(8, 1, 1, 3)
    )

    await run_until_scripted_rounds_end(store, every_seconds=0.01)

    after_first, after_failure, after_recovery = store.gauges_before[1:]
    assert after_failure == after_first == {"OK": 7, "FAILING": 2, "AUTH_REQUIRED": 1, "expiring": 3}
    assert after_recovery == {"OK": 8, "FAILING": 1, "AUTH_REQUIRED": 1, "expiring": 3}


async def test_rounds_are_spaced_by_the_period() -> None:
    store = ScriptedStore(overview(1, 0, 0, 0), overview(1, 0, 0, 0))
    loop = asyncio.get_running_loop()
    started = loop.time()

    await run_until_scripted_rounds_end(store, every_seconds=0.2)

    assert 0.4 <= loop.time() - started < 2  # three reads: at once, after 0.2 s, after 0.4 s


async def test_the_token_count_runs_only_every_tokens_period_and_its_gauge_keeps_the_last_count() -> None:
    store = ScriptedStore(overview(5, 0, 0, 9), overview(4, 1, 0, 2), overview(3, 1, 1, 0))

    await run_until_scripted_rounds_end(store, every_seconds=0.01, tokens_every_seconds=3600)

    assert store.counted_tokens[:3] == [True, False, False]  # the first round, then not for an hour
    after_first, after_second, after_third = store.gauges_before[1:]
    assert after_second == {"OK": 4, "FAILING": 1, "AUTH_REQUIRED": 0, "expiring": 9}  # states moved
    assert after_third == {"OK": 3, "FAILING": 1, "AUTH_REQUIRED": 1, "expiring": 9}


async def test_a_failed_token_count_is_tried_again_next_round() -> None:
    store = ScriptedStore(StoreUnavailable("token store", "MySQL gone"), overview(1, 0, 0, 4))

    await run_until_scripted_rounds_end(store, every_seconds=0.01, tokens_every_seconds=3600)

    assert store.counted_tokens[:2] == [True, True]
    assert store.gauges_before[2]["expiring"] == 4
