"""Backends for the cache-store and ticket-log contract suites: the embedded SQLite file, and a
real FerretDB server through each MongoDB client (motor and PyMongo's AsyncMongoClient), plus a
real MongoDB through both when MONGODB_URL is set.

Each backend also seeds legacy data the way an operator or the old Node service would
(plain SQL, or insert_one without `version`), so the suites need no adapter internals.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from adapters.driven.storage.crypto import TokenCipher
from adapters.driven.storage.mongo.cache_store import MongoCacheStore
from adapters.driven.storage.mongo.capabilities import resolve_capabilities
from adapters.driven.storage.mongo.change_feed import MongoChangeFeed
from adapters.driven.storage.mongo.database import CLIENT_FACTORIES, MongoDatabase
from adapters.driven.storage.mongo.outbox import MongoOutbox
from adapters.driven.storage.mongo.profiles import MongoStrategies, strategies_for
from adapters.driven.storage.mongo.sync_state_store import MongoSyncStateStore
from adapters.driven.storage.mongo.ticket_log import MongoTicketLog
from adapters.driven.storage.outbox_codec import OutboxCodec
from adapters.driven.storage.sqlite.cache_store import SqliteCacheStore
from adapters.driven.storage.sqlite.database import SqliteDatabase
from adapters.driven.storage.sqlite.outbox import SqliteOutbox
from adapters.driven.storage.sqlite.ticket_log import SqliteTicketLog

CACHE_COLLECTION = "bytemarkticketscaches"
LOG_COLLECTION = "bytemarkticketslogs"
CACHE_TABLE = "bytemark_tickets_cache"
LOG_TABLE = "bytemark_tickets_log"

MONGO_CLIENTS = tuple(CLIENT_FACTORIES)  # motor, pymongo
#: The server profile the Mongo suites run under (`make test` runs them under `auto`, which picks
#: `ferretdb` on FerretDB, and again under `mongodb`): what MONGODB_PROFILE is to the service.
MONGODB_PROFILE = os.environ.get("TEST_MONGODB_PROFILE", "auto")
BACKEND_KINDS = (
    ["sqlite"]
    + [f"ferretdb-{client}" for client in MONGO_CLIENTS]
    + ([f"mongodb-{client}" for client in MONGO_CLIENTS] if os.environ.get("MONGODB_URL") else [])
)


class SqliteBackend:
    name = "sqlite"
    #: SQLite keeps integers beyond 64 bits exact; BSON cannot (MongoBackend stores doubles, as Node).
    keeps_ints_beyond_int64 = True
    keeps_lone_surrogates = True

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        self.outbox = SqliteOutbox(db, OutboxCodec(TokenCipher(bytes(range(32)))))
        self.cache_store = SqliteCacheStore(db, outbox=self.outbox)
        self.ticket_log = SqliteTicketLog(db)

    async def create_schema(self) -> None:
        await self.cache_store.create_schema()
        await self.ticket_log.create_schema()

    async def insert_legacy_cache(self, user_id: int, timestamp: int, passes: list[dict[str, Any]]) -> None:
        await self.db.execute(
            f"INSERT INTO {CACHE_TABLE} (user_id, timestamp, passes, passes4) VALUES (?, ?, ?, '[]')",
            (user_id, timestamp, json.dumps(passes)),
        )

    async def has_unique_user_id_key(self) -> bool:
        columns = await self.db.fetchall(f"PRAGMA table_info({CACHE_TABLE})")
        return [row[1] for row in columns if row[5]] == ["user_id"]  # row[5]: position in the PK

    async def has_log_user_id_index(self) -> bool:
        indexes = await self.db.fetchall(f"PRAGMA index_list({LOG_TABLE})")
        indexed = [await self.db.fetchall(f"PRAGMA index_info({row[1]})") for row in indexes]
        return [["user_id"]] == [[column[2] for column in info] for info in indexed]


class MongoBackend:
    keeps_ints_beyond_int64 = False
    #: BSON strings are UTF-8: a lone surrogate is stored as U+FFFD, as Node's driver did.
    keeps_lone_surrogates = False

    def __init__(self, name: str, db: MongoDatabase, strategies: MongoStrategies) -> None:
        self.name = name
        self.db = db
        self.strategies = strategies
        self.outbox = MongoOutbox(
            db,
            OutboxCodec(TokenCipher(bytes(range(32)))),
            CACHE_COLLECTION,
            locks=strategies.locks,
            marks=strategies.marks,
        )
        self.refusals: list[str] = []  # what the store told its on_refused hook (the metric's feed)
        self.cache_store = mongo_cache_store(
            db, strategies, outbox=self.outbox, on_refused=self.refusals.append
        )
        self.ticket_log = MongoTicketLog(db)

    def change_feed(self, db: MongoDatabase | None = None) -> MongoChangeFeed:
        return MongoChangeFeed(db or self.db, reads=self.strategies.feed_reads)

    def sync_state_store(self) -> MongoSyncStateStore:
        return MongoSyncStateStore(self.db, writes=self.strategies.sync_state_writes)

    async def create_schema(self) -> None:
        await self.cache_store.create_schema()
        await self.ticket_log.create_schema()
        await self.outbox.create_schema()

    async def insert_legacy_cache(self, user_id: int, timestamp: int, passes: list[dict[str, Any]]) -> None:
        # Mongoose stored JS numbers, i.e. doubles, and knew nothing of `version`.
        await self.db.collection(CACHE_COLLECTION).insert_one(
            {"user_id": float(user_id), "timestamp": float(timestamp), "passes": passes, "passes4": []}
        )

    async def has_unique_user_id_key(self) -> bool:
        indexes = await self.db.collection(CACHE_COLLECTION).index_information()
        return any(
            list(index["key"]) == [("user_id", 1)] and index.get("unique") for index in indexes.values()
        )

    async def has_log_user_id_index(self) -> bool:
        indexes = await self.db.collection(LOG_COLLECTION).index_information()
        return any(list(index["key"]) == [("user_id", 1)] for index in indexes.values())

    async def drop_collections(self) -> None:
        for name in (CACHE_COLLECTION, LOG_COLLECTION, "bytemarkticketsoutbox"):
            await self.db.collection(name).drop()


Backend = SqliteBackend | MongoBackend


async def profile_strategies(db: MongoDatabase, profile: str = MONGODB_PROFILE) -> MongoStrategies:
    """The strategies the service would inject for `profile` on this server."""
    capabilities = await resolve_capabilities(db, profile)  # type: ignore[arg-type]
    return strategies_for(capabilities, db, CACHE_COLLECTION)


def mongo_cache_store(db: MongoDatabase, strategies: MongoStrategies, **options: Any) -> MongoCacheStore:
    """A cache store with the profile's strategies, as the container builds it."""
    return MongoCacheStore(
        db,
        locks=strategies.locks,
        inserts=strategies.cache_inserts,
        reads_by_id_first=strategies.reads_by_id_first,
        checks_unique_index=strategies.checks_unique_index,
        **options,
    )


def mongo_database(server_url: str, client: str) -> MongoDatabase:
    """A fresh database on the server of `server_url` (its own name, so runs never share data)."""
    return MongoDatabase(
        server_url,
        database_name=f"bytemark_contract_{uuid.uuid4().hex[:12]}",
        client_factory=CLIENT_FACTORIES[client],
    )


@asynccontextmanager
async def open_backend(kind: str, tmp_path: Path, ferretdb_url: str | None = None) -> AsyncIterator[Backend]:
    """An empty backend with its schema created, closed (and for MongoDB servers dropped) afterwards.
    `ferretdb_url` is the session's FerretDB server, for the ferretdb-* kinds."""
    if kind == "sqlite":
        sqlite_db = SqliteDatabase(str(tmp_path / "caches.sqlite3"))
        await sqlite_db.connect()
        try:
            sqlite_backend = SqliteBackend(sqlite_db)
            await sqlite_backend.create_schema()
            yield sqlite_backend
        finally:
            await sqlite_db.close()
        return

    server, client = kind.split("-")
    server_url = ferretdb_url if server == "ferretdb" else os.environ["MONGODB_URL"]
    assert server_url is not None, f"{kind} needs a server URL"
    mongo_db = mongo_database(server_url, client)
    await mongo_db.connect()
    mongo_backend = MongoBackend(kind, mongo_db, await profile_strategies(mongo_db))
    try:
        await mongo_backend.create_schema()
        yield mongo_backend
    finally:
        try:
            await mongo_backend.drop_collections()  # an empty database disappears with them
        finally:
            await mongo_db.close()


def assert_same_json(actual: Any, expected: Any, path: str = "$") -> None:
    """Equal as documents: same types (an int is not a float), same key order, same sign of zero."""
    assert type(actual) is type(expected), f"{path}: {type(actual).__name__} != {type(expected).__name__}"
    if isinstance(expected, dict):
        assert list(actual) == list(expected), f"{path}: keys {list(actual)} != {list(expected)}"
        for key, value in expected.items():
            assert_same_json(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{path}: length {len(actual)} != {len(expected)}"
        for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
            assert_same_json(got, want, f"{path}[{index}]")
    elif isinstance(expected, float):
        assert actual == expected and math.copysign(1, actual) == math.copysign(1, expected), (
            f"{path}: {actual!r} != {expected!r}"
        )
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
