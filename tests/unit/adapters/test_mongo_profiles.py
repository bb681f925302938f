"""MONGODB_PROFILE resolved into the Mongo adapters' strategies: each FerretDB workaround only
where its capability is missing, and `auto` decided by one buildInfo."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.composition.mongo_caches import mongo_strategies
from adapters.composition.settings import Settings
from adapters.driven.storage.mongo.capabilities import FERRETDB, MONGODB, resolve_capabilities
from adapters.driven.storage.mongo.feed_reads import RangeReads
from adapters.driven.storage.mongo.ferretdb.grouped_inserts import GroupedInserts
from adapters.driven.storage.mongo.ferretdb.grouped_marks import GroupedMarks
from adapters.driven.storage.mongo.ferretdb.point_feed_reads import PointFeedReads
from adapters.driven.storage.mongo.ferretdb.sync_state_writes import ReplacesById
from adapters.driven.storage.mongo.ferretdb.write_lock import WriteLocks
from adapters.driven.storage.mongo.inserts import DirectInserts
from adapters.driven.storage.mongo.locks import NoLocks
from adapters.driven.storage.mongo.marks import RiderByRiderMarks
from adapters.driven.storage.mongo.profiles import strategies_for
from adapters.driven.storage.mongo.sync_state_store import UpsertsByUserId
from application.errors import StoreUnavailable


class BuildInfoDatabase:
    """Answers buildInfo as the named server would; counts the round trips."""

    def __init__(self, server: str | None) -> None:
        self.server = server
        self.asked = 0

    async def is_ferretdb(self) -> bool:
        self.asked += 1
        if self.server is None:
            raise StoreUnavailable("MongoDB", "server selection timed out")
        return self.server == "ferretdb"


@pytest.mark.parametrize("server", ["mongodb", "ferretdb"])
async def test_an_explicit_profile_needs_no_round_trip(server: str) -> None:
    db = BuildInfoDatabase(server="ferretdb" if server == "mongodb" else "mongodb")
    capabilities = await resolve_capabilities(db, server)  # type: ignore[arg-type]
    assert capabilities.profile == server and db.asked == 0


@pytest.mark.parametrize(("server", "expected"), [("ferretdb", FERRETDB), ("mongodb", MONGODB)])
async def test_auto_asks_the_server_once(server: str, expected: Any) -> None:
    db = BuildInfoDatabase(server)
    assert await resolve_capabilities(db, "auto") is expected  # type: ignore[arg-type]
    assert db.asked == 1


async def test_auto_with_the_server_down_says_the_store_is_unavailable() -> None:
    settings = Settings(mongodb_url="mongodb://127.0.0.1:1/x", mongodb_profile="auto")
    with pytest.raises(StoreUnavailable):
        await mongo_strategies(BuildInfoDatabase(None), settings)  # type: ignore[arg-type]


def test_mongodb_gets_no_workaround() -> None:
    strategies = strategies_for(MONGODB, None, "caches")  # type: ignore[arg-type]
    assert isinstance(strategies.locks, NoLocks) and isinstance(strategies.cache_inserts, DirectInserts)
    assert isinstance(strategies.marks, RiderByRiderMarks) and isinstance(strategies.feed_reads, RangeReads)
    assert isinstance(strategies.sync_state_writes, UpsertsByUserId)
    assert not strategies.reads_by_id_first and not strategies.checks_unique_index


def test_ferretdb_gets_each_workaround() -> None:
    strategies = strategies_for(FERRETDB, None, "caches")  # type: ignore[arg-type]
    assert isinstance(strategies.locks, WriteLocks) and isinstance(strategies.cache_inserts, GroupedInserts)
    assert isinstance(strategies.marks, GroupedMarks) and isinstance(strategies.feed_reads, PointFeedReads)
    assert isinstance(strategies.sync_state_writes, ReplacesById)
    assert strategies.reads_by_id_first and strategies.checks_unique_index


def test_the_profile_setting_accepts_the_three_names_only() -> None:
    assert Settings(mongodb_profile="MongoDB").mongodb_profile == "mongodb"
    with pytest.raises(ValueError, match="auto, mongodb, ferretdb"):
        Settings(mongodb_profile="atlas")
