"""Caches, the ticket log, sync states, the outbox and the change feed on MongoDB (or FerretDB):
what MONGODB_URL wires."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from dependency_injector import containers, providers

from adapters.composition.connections import connected
from adapters.composition.settings import Settings
from adapters.driven.observability.metrics import count_refused_document
from adapters.driven.storage.crypto.token_cipher import TokenCipher
from adapters.driven.storage.mongo.cache_store import MongoCacheStore
from adapters.driven.storage.mongo.capabilities import resolve_capabilities
from adapters.driven.storage.mongo.change_feed import MongoChangeFeed
from adapters.driven.storage.mongo.database import CLIENT_FACTORIES, MongoDatabase
from adapters.driven.storage.mongo.outbox import MongoOutbox
from adapters.driven.storage.mongo.profiles import MongoStrategies, strategies_for
from adapters.driven.storage.mongo.sync_state_store import MongoSyncStateStore
from adapters.driven.storage.mongo.ticket_log import MongoTicketLog
from adapters.driven.storage.outbox_codec import OutboxCodec

log = logging.getLogger(__name__)


async def _mongo_database(settings: Settings) -> AsyncIterator[MongoDatabase]:
    assert settings.mongodb_url is not None
    client_factory = CLIENT_FACTORIES[settings.mongodb_client]
    async with connected(
        MongoDatabase(settings.mongodb_url, settings.mongodb_database, client_factory)
    ) as db:
        yield db


async def mongo_strategies(db: MongoDatabase, settings: Settings) -> MongoStrategies:
    """MONGODB_PROFILE resolved once into the adapters' strategies: `auto` asks buildInfo
    (StoreUnavailable when the server is down: `serve` and `migrate` need it at start-up anyway);
    a named profile asks nothing."""
    capabilities = await resolve_capabilities(db, settings.mongodb_profile)
    log.info("MongoDB server profile", extra={"profile": capabilities.profile})
    return strategies_for(capabilities, db, settings.mongodb_cache_collection)


class MongoCaches(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    cipher = providers.Dependency(instance_of=TokenCipher)

    database = providers.Resource(_mongo_database, settings)
    #: MONGODB_PROFILE resolved once: no locks on MongoDB; FerretDB v1's workarounds on FerretDB.
    strategies = providers.Resource(mongo_strategies, database, settings)

    outbox = providers.Singleton(
        MongoOutbox,
        database,
        providers.Singleton(OutboxCodec, cipher),
        settings.provided.mongodb_cache_collection,
        locks=strategies.provided.locks,
        marks=strategies.provided.marks,
    )
    change_feed_store = providers.Singleton(MongoChangeFeed, database, reads=strategies.provided.feed_reads)
    #: The relay appends the feed: a cache write touches its one document only (no transaction).
    relayed_change_feed = change_feed_store
    cache_store = providers.Singleton(
        MongoCacheStore,
        database,
        settings.provided.mongodb_cache_collection,
        outbox=outbox,
        on_refused=count_refused_document,
        locks=strategies.provided.locks,
        inserts=strategies.provided.cache_inserts,
        reads_by_id_first=strategies.provided.reads_by_id_first,
        checks_unique_index=strategies.provided.checks_unique_index,
    )
    ticket_log = providers.Singleton(
        MongoTicketLog, database, settings.provided.mongodb_ticket_log_collection
    )
    sync_state_store = providers.Singleton(
        MongoSyncStateStore,
        database,
        settings.provided.mongodb_sync_status_collection,
        writes=strategies.provided.sync_state_writes,
    )
    #: None: the MongoDB ticket log keys entries by record id, so it keeps no delivered-ids table.
    delivered_ids: providers.Object[None] = providers.Object(None)
