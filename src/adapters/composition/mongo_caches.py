"""Caches, the ticket log, sync states, the outbox and the change feed on MongoDB (or FerretDB):
what MONGODB_URL wires."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dependency_injector import containers, providers

from adapters.composition.connections import connected
from adapters.composition.settings import Settings
from adapters.driven.observability.metrics import count_refused_document
from adapters.driven.storage.crypto.token_cipher import TokenCipher
from adapters.driven.storage.mongo.cache_store import MongoCacheStore
from adapters.driven.storage.mongo.change_feed import MongoChangeFeed
from adapters.driven.storage.mongo.database import CLIENT_FACTORIES, MongoDatabase
from adapters.driven.storage.mongo.outbox import MongoOutbox
from adapters.driven.storage.mongo.sync_state_store import MongoSyncStateStore
from adapters.driven.storage.mongo.ticket_log import MongoTicketLog
from adapters.driven.storage.outbox_codec import OutboxCodec


async def _mongo_database(settings: Settings) -> AsyncIterator[MongoDatabase]:
    assert settings.mongodb_url is not None
    client_factory = CLIENT_FACTORIES[settings.mongodb_client]
    async with connected(
        MongoDatabase(settings.mongodb_url, settings.mongodb_database, client_factory)
    ) as db:
        yield db


class MongoCaches(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    cipher = providers.Dependency(instance_of=TokenCipher)

    database = providers.Resource(_mongo_database, settings)

    outbox = providers.Singleton(
        MongoOutbox,
        database,
        providers.Singleton(OutboxCodec, cipher),
        settings.provided.mongodb_cache_collection,
    )
    change_feed_store = providers.Singleton(MongoChangeFeed, database)
    #: The relay appends the feed: a cache write cannot (no multi-document writes).
    relayed_change_feed = change_feed_store
    cache_store = providers.Singleton(
        MongoCacheStore,
        database,
        settings.provided.mongodb_cache_collection,
        outbox=outbox,
        on_refused=count_refused_document,
    )
    ticket_log = providers.Singleton(
        MongoTicketLog, database, settings.provided.mongodb_ticket_log_collection
    )
    sync_state_store = providers.Singleton(
        MongoSyncStateStore, database, settings.provided.mongodb_sync_status_collection
    )
    #: None: the MongoDB ticket log keys entries by record id, so it keeps no delivered-ids table.
    delivered_ids: providers.Object[None] = providers.Object(None)
