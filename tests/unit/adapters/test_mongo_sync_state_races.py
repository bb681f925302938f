"""MongoSyncStateStore.put_many when another process wins an upsert race on a rider: the batch is
written again, and what never clears becomes StoreUnavailable, never a raw driver error."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import BulkWriteError

from adapters.driven.storage.mongo.database import MongoDatabase
from adapters.driven.storage.mongo.sync_state_store import MongoSyncStateStore
from application.errors import StoreUnavailable
from domain.sync_state import succeeded

DUPLICATE = BulkWriteError({"writeErrors": [{"index": 0, "code": 11000, "errmsg": "dup"}]})
REFUSED = BulkWriteError({"writeErrors": [{"index": 0, "code": 2, "errmsg": "bad"}]})


class ScriptedWrites:
    """Fails with each scripted error in turn, then writes."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.attempts = 0

    async def write(self, collection: Any, documents: dict[int, dict[str, Any]]) -> None:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)


class NoServer(MongoDatabase):
    def collection(self, name: str) -> Any:
        return None  # the scripted writes never touch it


def store_with(writes: ScriptedWrites) -> MongoSyncStateStore:
    return MongoSyncStateStore(NoServer("mongodb://127.0.0.1:1/x"), writes=writes)


@pytest.mark.parametrize(
    "lost", [DUPLICATE, KeyError("nModified")], ids=["duplicate user_id", "FerretDB's reply"]
)
async def test_a_lost_upsert_race_is_written_again(lost: BaseException) -> None:
    writes = ScriptedWrites(lost)
    await store_with(writes).put_many([succeeded(1, 100, 100)])
    assert writes.attempts == 2


async def test_a_race_lost_every_time_is_store_unavailable() -> None:
    writes = ScriptedWrites(KeyError("nModified"), KeyError("nModified"), KeyError("nModified"))
    with pytest.raises(StoreUnavailable, match="unexpected bulk write reply"):
        await store_with(writes).put_many([succeeded(1, 100, 100)])
    assert writes.attempts == 3


async def test_a_refusal_other_than_a_duplicate_is_not_retried() -> None:
    writes = ScriptedWrites(REFUSED)
    with pytest.raises(StoreUnavailable):
        await store_with(writes).put_many([succeeded(1, 100, 100)])
    assert writes.attempts == 1


async def test_an_empty_batch_writes_nothing() -> None:
    writes = ScriptedWrites()
    await store_with(writes).put_many([])
    assert writes.attempts == 0
