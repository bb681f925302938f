"""Every store on one SQLite file: what a deployment without MYSQL_URL or MONGODB_URL wires.

It serves as the token family, the cache family, or both (then one file, one connection, and
one table of delivered record ids).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from dependency_injector import containers, providers

from adapters.composition.connections import connected
from adapters.composition.settings import Settings
from adapters.driven.storage.crypto.token_cipher import TokenCipher
from adapters.driven.storage.outbox_codec import OutboxCodec
from adapters.driven.storage.sqlite.cache_store import SqliteCacheStore
from adapters.driven.storage.sqlite.change_feed import SqliteChangeFeed
from adapters.driven.storage.sqlite.database import SqliteDatabase
from adapters.driven.storage.sqlite.delivered_ids import SqliteDeliveredIds
from adapters.driven.storage.sqlite.outbox import SqliteOutbox
from adapters.driven.storage.sqlite.refresh_log import SqliteRefreshLog
from adapters.driven.storage.sqlite.sync_state_store import SqliteSyncStateStore
from adapters.driven.storage.sqlite.ticket_log import SqliteTicketLog
from adapters.driven.storage.sqlite.token_store import SqliteTokenStore


async def _sqlite_database(settings: Settings) -> AsyncIterator[SqliteDatabase]:
    if settings.sqlite_path != ":memory:":
        Path(settings.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
    async with connected(SqliteDatabase(settings.sqlite_path)) as db:
        yield db


class SqliteStores(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    cipher = providers.Dependency(instance_of=TokenCipher)

    database = providers.Resource(_sqlite_database, settings)

    # -- as the token family
    token_store = providers.Singleton(SqliteTokenStore, database, cipher)
    refresh_log = providers.Singleton(SqliteRefreshLog, database)
    #: The one delivered-ids table of the file, whichever families live in it.
    delivered_ids = providers.Singleton(SqliteDeliveredIds, database)

    # -- as the cache family
    outbox = providers.Singleton(SqliteOutbox, database, providers.Singleton(OutboxCodec, cipher))
    #: A cache write appends the feed in its own transaction, so the relay need not.
    relayed_change_feed: providers.Object[None] = providers.Object(None)
    change_feed_store = providers.Singleton(SqliteChangeFeed, database)
    cache_store = providers.Singleton(SqliteCacheStore, database, outbox=outbox)
    ticket_log = providers.Singleton(SqliteTicketLog, database)
    sync_state_store = providers.Singleton(SqliteSyncStateStore, database)
