"""The FerretDB write lock when its holder is cancelled (an RPC deadline, a client hanging up):
whatever moment the cancellation hits, no lock is left behind to stall the rider's next writer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.driven.storage.mongo.ferretdb.write_lock import WriteLocks


class SlowLockCollection:
    """A lock collection whose insert reaches the server at once and whose reply takes a while."""

    def __init__(self) -> None:
        self.held: dict[int, str] = {}
        self.insert_started = asyncio.Event()

    async def insert_one(self, document: dict[str, Any]) -> None:
        self.held[document["_id"]] = document["token"]
        self.insert_started.set()
        await asyncio.sleep(0.05)  # the reply on its way back

    async def delete_one(self, query: dict[str, Any]) -> None:
        await asyncio.sleep(0.01)
        if self.held.get(query["_id"]) == query["token"]:
            del self.held[query["_id"]]


class FerretLikeDatabase:
    def __init__(self) -> None:
        self.locks = SlowLockCollection()

    def collection(self, name: str) -> SlowLockCollection:
        return self.locks


async def hold(locks: WriteLocks, entered: asyncio.Event, seconds: float) -> None:
    async with locks.held(7, 1):
        entered.set()
        await asyncio.sleep(seconds)


@pytest.mark.parametrize("cancel_at", ["while the insert is on the wire", "while the lock is held"])
async def test_a_cancelled_holder_leaves_no_lock(cancel_at: str) -> None:
    db = FerretLikeDatabase()
    entered = asyncio.Event()
    holder = asyncio.create_task(hold(WriteLocks(db, "caches_locks"), entered, seconds=10))  # type: ignore[arg-type]
    await (db.locks.insert_started if cancel_at.startswith("while the insert") else entered).wait()

    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder

    for _ in range(50):  # the release finishes in the background within milliseconds
        if not db.locks.held:
            break
        await asyncio.sleep(0.01)
    assert db.locks.held == {}
