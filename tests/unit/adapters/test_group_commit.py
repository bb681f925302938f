"""The one group commit (SQLite's batches, FerretDB's single writer): requests queued while a
group is being sent go as the next group, each caller gets its own outcome, and a cancelled
caller's request is either left out until its group is taken (a local file) or sent anyway
(a networked store, where it may be on the wire already)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from adapters.driven.storage.group_commit import GroupCommit, IfCallerCancelled

SEND, DROP = IfCallerCancelled.SEND_ANYWAY, IfCallerCancelled.DROP_UNSENT


class Recorder:
    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.release = asyncio.Event()
        self.sent = asyncio.Event()

    async def sending(self) -> None:
        """Until a group is being sent."""
        await self.sent.wait()

    async def flush(self, items: Sequence[str]) -> list[BaseException | str]:
        self.groups.append(list(items))
        self.sent.set()
        await self.release.wait()
        if "down" in items:
            raise ConnectionError("store down")
        return [ValueError(item) if item.startswith("bad") else item.upper() for item in items]


async def test_requests_queued_while_a_group_is_on_the_wire_go_as_the_next_group() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.flush, max_group=3, if_cancelled=SEND)
    first = asyncio.ensure_future(commit.submit("a"))
    await asyncio.sleep(0)  # "a" is on the wire
    rest = [asyncio.ensure_future(commit.submit(item)) for item in "bcde"]
    await asyncio.sleep(0)
    recorder.release.set()
    await asyncio.gather(first, *rest)
    assert recorder.groups == [["a"], ["b", "c", "d"], ["e"]]


async def test_each_caller_gets_its_own_failure_and_a_failed_group_does_not_stop_the_next() -> None:
    recorder = Recorder()
    recorder.release.set()
    commit = GroupCommit(recorder.flush, max_group=10, if_cancelled=SEND)
    outcomes = await asyncio.gather(
        commit.submit("ok"), commit.submit("bad-1"), commit.submit("fine"), return_exceptions=True
    )
    assert outcomes[0] == "OK" and outcomes[2] == "FINE"
    assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "bad-1"

    with pytest.raises(ConnectionError):
        await commit.submit("down")
    await commit.submit("after")
    assert recorder.groups[-1] == ["after"]


async def test_a_caller_cancelled_while_waiting_leaves_its_request_to_be_sent() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.flush, max_group=10, if_cancelled=SEND)
    waiting = asyncio.ensure_future(commit.submit("x"))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    other = asyncio.ensure_future(commit.submit("y"))
    recorder.release.set()
    await other
    assert recorder.groups == [["x"], ["y"]]


async def test_a_caller_cancelled_before_its_group_is_taken_leaves_its_work_out() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.flush, max_group=10, if_cancelled=DROP)
    sent = asyncio.ensure_future(commit.submit("a"))
    await recorder.sending()
    dropped = asyncio.ensure_future(commit.submit("x"))
    kept = asyncio.ensure_future(commit.submit("y"))
    await asyncio.sleep(0)
    dropped.cancel()
    recorder.release.set()
    assert await asyncio.gather(sent, kept) == ["A", "Y"]
    assert recorder.groups == [["a"], ["y"]]


async def test_a_caller_cancelled_once_its_group_is_sent_is_not_told_but_the_work_is_done() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.flush, max_group=10, if_cancelled=DROP)
    waiting = asyncio.ensure_future(commit.submit("a"))
    await recorder.sending()
    waiting.cancel()
    recorder.release.set()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await commit.submit("b") == "B"
    assert recorder.groups == [["a"], ["b"]]


async def test_a_group_waits_its_turn_and_takes_everything_that_queued_meanwhile() -> None:
    recorder = Recorder()
    recorder.release.set()
    turn = asyncio.Lock()
    commit = GroupCommit(recorder.flush, max_group=10, if_cancelled=DROP, turn=turn)
    async with turn:  # e.g. an open transaction on the same connection
        calls = [asyncio.ensure_future(commit.submit(item)) for item in "abc"]
        for _ in range(20):  # ample turns of the loop for a sender that did not wait
            await asyncio.sleep(0)
        assert recorder.groups == []
    assert await asyncio.gather(*calls) == ["A", "B", "C"]
    assert recorder.groups == [["a", "b", "c"]]
