"""The composition root: where the service chooses and wires its concrete adapters.

Stores are chosen by configuration: MySQL for tokens and the refresh log when MYSQL_URL is
set, MongoDB for caches and the ticket log when MONGODB_URL is set, else one SQLite file.
Resources (HTTP session, pools, connections) start lazily on first use, inside the running
loop, and `shutdown_resources()` closes the ones that were started.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import aiohttp
from dependency_injector import containers, providers
from slack_sdk.web.async_client import AsyncWebClient

from adapters.composition.mongo_profile import mongo_strategies
from adapters.composition.settings import Settings
from adapters.driven.bytemark_api.client import BytemarkClient
from adapters.driven.bytemark_api.rate_limit import RateLimiter
from adapters.driven.bytemark_api.retry import RetryPolicy
from adapters.driven.clock import SystemClock
from adapters.driven.observability.instrumented_use_cases import InstrumentedUseCases
from adapters.driven.observability.metrics import OutboxMetrics, count_refused_document, observe_bytemark_call
from adapters.driven.observability.sync_gauges import SyncGaugeRefresher
from adapters.driven.slack.notifier import NullNotifier, SlackNotifier
from adapters.driven.storage.crypto.token_cipher import TokenCipher
from adapters.driven.storage.mongo.cache_store import MongoCacheStore
from adapters.driven.storage.mongo.change_feed import MongoChangeFeed
from adapters.driven.storage.mongo.database import CLIENT_FACTORIES, MongoDatabase
from adapters.driven.storage.mongo.outbox import MongoOutbox
from adapters.driven.storage.mongo.sync_state_store import MongoSyncStateStore
from adapters.driven.storage.mongo.ticket_log import MongoTicketLog
from adapters.driven.storage.mysql.database import MysqlDatabase
from adapters.driven.storage.mysql.delivered_ids import MysqlDeliveredIds
from adapters.driven.storage.mysql.refresh_log import MysqlRefreshLog
from adapters.driven.storage.mysql.token_store import MysqlTokenStore
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
from application.change_feed import ChangeFeed
from application.delivered_sweep import DeliveredIds, DeliveredIdSweep
from application.errors import StoreUnavailable
from application.refresh import RefreshDependencies
from application.relay import OutboxRelay
from application.sync_tracking import SyncPolicy
from application.use_cases import TicketCacheUseCases
from domain.free_tickets import FreeTicketPolicy
from domain.sync_state import Backoff

log = logging.getLogger(__name__)
T = TypeVar("T")


# -- resources -------------------------------------------------------------------------------


async def _sqlite_database(settings: Settings) -> AsyncIterator[SqliteDatabase]:
    if settings.sqlite_path != ":memory:":
        Path(settings.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
    db = SqliteDatabase(settings.sqlite_path)
    await db.connect()
    try:
        yield db
    finally:
        await db.close()


async def _mysql_database(settings: Settings) -> AsyncIterator[MysqlDatabase]:
    assert settings.mysql_url is not None
    db = MysqlDatabase(settings.mysql_url)
    try:
        await db.connect()
    except StoreUnavailable as exc:  # the pool is created on the next call instead
        log.warning("MySQL not reachable at start-up; will retry on use", extra={"reason": exc.reason})
    try:
        yield db
    finally:
        await db.close()


async def _mongo_database(settings: Settings) -> AsyncIterator[MongoDatabase]:
    assert settings.mongodb_url is not None
    db = MongoDatabase(
        settings.mongodb_url,
        settings.mongodb_database,
        client_factory=CLIENT_FACTORIES[settings.mongodb_client],
    )
    await db.connect()
    try:
        yield db
    finally:
        await db.close()


async def _http_session(settings: Settings) -> AsyncIterator[aiohttp.ClientSession]:
    # Enough sockets for every bulk worker's two concurrent list fetches.
    connector = aiohttp.TCPConnector(limit=max(100, settings.bulk_concurrency * 2 + 16))
    session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
    try:
        yield session
    finally:
        await session.close()


async def _slack_client(settings: Settings) -> AsyncIterator[AsyncWebClient]:
    assert settings.slack_bot_token is not None
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url, timeout=5
    )
    try:
        yield client
    finally:
        if client.session is not None:
            await client.session.close()


# -- factories -------------------------------------------------------------------------------


def _token_cipher(settings: Settings) -> TokenCipher:
    key = settings.token_encryption_key
    return TokenCipher.from_base64(key.get_secret_value() if key else None)


def _bytemark_client(settings: Settings, session: aiohttp.ClientSession) -> BytemarkClient:
    settings.require("BYTEMARK_CUSTOMER_API_URL", "BYTEMARK_ACCOUNT_API_URL")
    secret = settings.bytemark_client_secret
    return BytemarkClient(
        session,
        str(settings.bytemark_customer_api_url),
        str(settings.bytemark_account_api_url),
        settings.bytemark_client_id or "",
        secret.get_secret_value() if secret else "",
        timeout_seconds=settings.bytemark_timeout_seconds,
        retry_policy=RetryPolicy(max_attempts=settings.bytemark_max_attempts),
        rate_limiter=RateLimiter(settings.bytemark_rate_limit_rps or None),
        on_call=observe_bytemark_call,
    )


def _sync_policy(settings: Settings) -> SyncPolicy:
    return SyncPolicy(backoff=Backoff(settings.sync_backoff_base_seconds, settings.sync_backoff_max_seconds))


def _token_backend(settings: Settings) -> str:
    return "mysql" if settings.mysql_url else "sqlite"


def _cache_backend(settings: Settings) -> str:
    return "mongo" if settings.mongodb_url else "sqlite"


def _delivered_id_tables(*tables: DeliveredIds | None) -> list[DeliveredIds]:
    """Each database with a `bytemark_outbox_delivered` table once: the token store's (tokens and
    the refresh log) and the SQLite ticket log's, often the same file."""
    unique: list[DeliveredIds] = []
    for table in tables:
        if table is not None and all(table is not seen for seen in unique):
            unique.append(table)
    return unique


def _notifier_backend(settings: Settings) -> str:
    return "slack" if settings.slack_enabled else "none"


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    cipher = providers.Singleton(_token_cipher, settings)

    sqlite = providers.Resource(_sqlite_database, settings)
    mysql = providers.Resource(_mysql_database, settings)
    mongo = providers.Resource(_mongo_database, settings)
    #: MONGODB_PROFILE's strategies (no locks on MongoDB; FerretDB v1's workarounds on FerretDB)
    mongo_strategies = providers.Resource(mongo_strategies, mongo, settings)
    http_session = providers.Resource(_http_session, settings)
    slack_client = providers.Resource(_slack_client, settings)

    token_store = providers.Selector(
        providers.Callable(_token_backend, settings),
        mysql=providers.Singleton(MysqlTokenStore, mysql, cipher),
        sqlite=providers.Singleton(SqliteTokenStore, sqlite, cipher),
    )
    refresh_log = providers.Selector(
        providers.Callable(_token_backend, settings),
        mysql=providers.Singleton(MysqlRefreshLog, mysql),
        sqlite=providers.Singleton(SqliteRefreshLog, sqlite),
    )
    outbox_codec = providers.Singleton(OutboxCodec, cipher)
    sqlite_outbox = providers.Singleton(SqliteOutbox, sqlite, outbox_codec)
    mongo_outbox = providers.Singleton(
        MongoOutbox,
        mongo,
        outbox_codec,
        settings.provided.mongodb_cache_collection,
        locks=mongo_strategies.provided.locks,
        marks=mongo_strategies.provided.marks,
    )
    outbox = providers.Selector(
        providers.Callable(_cache_backend, settings),
        sqlite=sqlite_outbox,
        mongo=mongo_outbox,
    )
    mongo_change_feed = providers.Singleton(
        MongoChangeFeed, mongo, reads=mongo_strategies.provided.feed_reads
    )
    change_feed_store = providers.Selector(
        providers.Callable(_cache_backend, settings),
        sqlite=providers.Singleton(SqliteChangeFeed, sqlite),
        mongo=mongo_change_feed,
    )
    #: On MongoDB the relay appends the feed (a cache write touches its one document only).
    relayed_change_feed = providers.Selector(
        providers.Callable(_cache_backend, settings),
        sqlite=providers.Object(None),
        mongo=mongo_change_feed,
    )
    cache_store = providers.Selector(
        providers.Callable(_cache_backend, settings),
        mongo=providers.Singleton(
            MongoCacheStore,
            mongo,
            settings.provided.mongodb_cache_collection,
            outbox=mongo_outbox,
            on_refused=count_refused_document,
            locks=mongo_strategies.provided.locks,
            inserts=mongo_strategies.provided.cache_inserts,
            reads_by_id_first=mongo_strategies.provided.reads_by_id_first,
            checks_unique_index=mongo_strategies.provided.checks_unique_index,
        ),
        sqlite=providers.Singleton(SqliteCacheStore, sqlite, outbox=sqlite_outbox),
    )
    ticket_log = providers.Selector(
        providers.Callable(_cache_backend, settings),
        mongo=providers.Singleton(MongoTicketLog, mongo, settings.provided.mongodb_ticket_log_collection),
        sqlite=providers.Singleton(SqliteTicketLog, sqlite),
    )

    sync_state_store = providers.Selector(
        providers.Callable(_cache_backend, settings),
        mongo=providers.Singleton(
            MongoSyncStateStore,
            mongo,
            settings.provided.mongodb_sync_status_collection,
            writes=mongo_strategies.provided.sync_state_writes,
        ),
        sqlite=providers.Singleton(SqliteSyncStateStore, sqlite),
    )

    bytemark = providers.Singleton(_bytemark_client, settings, http_session)
    notifier = providers.Selector(
        providers.Callable(_notifier_backend, settings),
        slack=providers.Singleton(
            SlackNotifier,
            slack_client,
            settings.provided.slack_channel_id,
            settings.provided.project_name,
            settings.provided.project_stage,
        ),
        none=providers.Singleton(NullNotifier),
    )

    refresh_dependencies = providers.Singleton(
        RefreshDependencies,
        tokens=token_store,
        caches=cache_store,
        ticket_log=ticket_log,
        refresh_log=refresh_log,
        passes_source=bytemark,
        token_refresher=bytemark,
        notifier=notifier,
        clock=clock,
        outbox=outbox,
    )
    #: Runs in `serve` (deliveries that failed, or that another process left behind).
    relay = providers.Singleton(
        OutboxRelay,
        outbox,
        ticket_log,
        refresh_log,
        token_store,
        observer=providers.Singleton(OutboxMetrics),
        change_feed=relayed_change_feed,
    )
    sqlite_delivered_ids = providers.Singleton(SqliteDeliveredIds, sqlite)
    #: Runs in `serve` beside the relay: forgets delivered record ids no relay can deliver again.
    delivered_id_sweep = providers.Singleton(
        DeliveredIdSweep,
        outbox,
        providers.Callable(
            _delivered_id_tables,
            providers.Selector(
                providers.Callable(_token_backend, settings),
                mysql=providers.Singleton(MysqlDeliveredIds, mysql),
                sqlite=sqlite_delivered_ids,
            ),
            providers.Selector(
                providers.Callable(_cache_backend, settings),
                sqlite=sqlite_delivered_ids,
                mongo=providers.Object(None),  # the MongoDB ticket log keys entries by record id
            ),
        ),
        clock,
    )
    change_feed = providers.Singleton(
        ChangeFeed, change_feed_store, clock, settings.provided.change_feed_retention_days
    )
    core_use_cases = providers.Singleton(
        TicketCacheUseCases,
        refresh_dependencies,
        free_tickets=providers.Callable(FreeTicketPolicy.of, settings.provided.free_ticket_product_uuids),
        cache_timeout_seconds=settings.provided.cache_timeout_seconds,
        bulk_concurrency=settings.provided.bulk_concurrency,
        passes4_retention_days=settings.provided.passes4_retention_days,
        sync_states=sync_state_store,
        sync_policy=providers.Callable(_sync_policy, settings),
        token_refresh_margin_seconds=settings.provided.token_refresh_margin_seconds,
        relay=relay,
        change_feed=change_feed,
    )
    #: What transports use (the CLI's `serve` resolves it): the use cases with metrics recorded.
    use_cases = providers.Singleton(InstrumentedUseCases, core_use_cases)
    #: Runs in `serve`: the sync-state gauges, current even when no bulk run ends.
    sync_gauges = providers.Singleton(
        SyncGaugeRefresher,
        core_use_cases.provided.sync_overview,
        settings.provided.sync_gauges_refresh_seconds,
        settings.provided.token_gauge_refresh_seconds,
    )


class HasSchema(Protocol):
    """A store that creates its own tables or indexes."""

    async def create_schema(self) -> None:
        """Create them if missing; idempotent, and existing rows stay."""


async def migrate_stores(container: Container) -> list[str]:
    """The one migration (`migrate`, and `serve` and `demo` at start-up): every configured store
    creates its tables and indexes. Returns one line per store."""
    stores: dict[str, providers.Provider[HasSchema]] = {
        "token_store": container.token_store,
        "refresh_log": container.refresh_log,
        "cache_store": container.cache_store,
        "ticket_log": container.ticket_log,
        "sync_state_store": container.sync_state_store,
        "outbox": container.outbox,
        "change_feed_store": container.change_feed_store,
    }
    done = []
    for name, provider in stores.items():
        store = await resolve(provider)
        if store is None:
            continue
        await store.create_schema()
        done.append(f"{name}: {type(store).__name__}")
    return done


async def resolve(provider: providers.Provider[T]) -> T:
    """Provide an object whose graph holds async resources (they start on first use)."""
    provided: Any = provider()
    return cast(T, await provided if inspect.isawaitable(provided) else provided)


def build_container(settings: Settings) -> Container:
    container = Container()
    container.settings.override(providers.Object(settings))
    return container
