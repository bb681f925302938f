"""The group commit the Mongo adapters use for FerretDB's single writer: requests queued while a
group is on the wire go as the next group, each caller gets its own outcome, and a caller that
gives up waiting does not withdraw a request that may already be on the wire."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from adapters.driven.storage.mongo.group_commit import GroupCommit


class Recorder:
    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.release = asyncio.Event()

    async def flush(self, items: Sequence[str]) -> list[BaseException | None]:
        self.groups.append(list(items))
        await self.release.wait()
        if "down" in items:
            raise ConnectionError("store down")
        return [ValueError(item) if item.startswith("bad") else None for item in items]


async def test_requests_queued_while_a_group_is_on_the_wire_go_as_the_next_group() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.flush, max_group=3)
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
    commit = GroupCommit(recorder.flush, max_group=10)
    outcomes = await asyncio.gather(
        commit.submit("ok"), commit.submit("bad-1"), commit.submit("fine"), return_exceptions=True
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "bad-1"

    with pytest.raises(ConnectionError):
        await commit.submit("down")
    await commit.submit("after")
    assert recorder.groups[-1] == ["after"]


async def test_a_caller_cancelled_while_waiting_leaves_its_request_to_be_sent() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.flush, max_group=10)
    waiting = asyncio.ensure_future(commit.submit("x"))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    other = asyncio.ensure_future(commit.submit("y"))
    recorder.release.set()
    await other
    assert recorder.groups == [["x"], ["y"]]
