"""The composition root: where the service chooses and wires its concrete adapters.

Stores come in families, each a sub-container complete in itself: `MysqlTokens` (MYSQL_URL),
`MongoCaches` (MONGODB_URL) and `SqliteStores` (one SQLite file for whichever of the two is
not configured). `build_container` picks them, in one place. Resources (HTTP session, pools,
connections) start lazily on first use, inside the running loop, and `shutdown_resources()`
closes the ones that were started.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any, Protocol, TypeVar, cast

from dependency_injector import containers, providers

from adapters.composition.mongo_caches import MongoCaches
from adapters.composition.mysql_tokens import MysqlTokens
from adapters.composition.remote_services import RemoteServices
from adapters.composition.settings import Settings
from adapters.composition.sqlite_stores import SqliteStores
from adapters.driven.clock import SystemClock
from adapters.driven.observability.bulk_tracing import OtelBulkTracer
from adapters.driven.observability.freshness_gauges import FreshnessGaugeRefresher
from adapters.driven.observability.instrumented_use_cases import InstrumentedUseCases
from adapters.driven.observability.metrics import OutboxMetrics
from adapters.driven.observability.pushgateway import PushgatewayReporter
from adapters.driven.observability.sync_gauges import SyncGaugeRefresher
from adapters.driven.observability.tracing import TracingConfig, start_tracing
from adapters.driven.storage.crypto.token_cipher import TokenCipher
from application.change_feed import ChangeFeed
from application.delivered_sweep import DeliveredIds, DeliveredIdSweep
from application.freshness import FreshnessQuery
from application.refresh import RefreshDependencies
from application.relay import OutboxRelay
from application.run_summary import NoRunReporter
from application.sync_tracking import SyncPolicy
from application.use_cases import TicketCacheUseCases
from domain.free_tickets import FreeTicketPolicy
from domain.sync_state import Backoff

T = TypeVar("T")


def _token_cipher(settings: Settings) -> TokenCipher:
    key = settings.token_encryption_key
    return TokenCipher.from_base64(key.get_secret_value() if key else None)


def _sync_policy(settings: Settings) -> SyncPolicy:
    return SyncPolicy(
        backoff=Backoff(settings.sync_backoff_base_seconds, settings.sync_backoff_max_seconds),
        store_outage_grace_seconds=settings.store_outage_grace_seconds,
    )


def _delivered_id_tables(*tables: DeliveredIds | None) -> list[DeliveredIds]:
    """Each database with a `bytemark_outbox_delivered` table once: the token family's and the
    cache family's, the same one when both live in one SQLite file."""
    unique: list[DeliveredIds] = []
    for table in tables:
        if table is not None and all(table is not seen for seen in unique):
            unique.append(table)
    return unique


def _run_reporter_backend(settings: Settings) -> str:
    return "pushgateway" if settings.pushgateway_url else "none"


# --- OpenTelemetry traces (docs/tracing.md) ---------------------------------------------


def tracing_config(settings: Settings) -> TracingConfig:
    return TracingConfig(
        service_name=settings.otel_service_name,
        protocol=settings.otel_exporter_otlp_protocol,
        endpoint=settings.otel_exporter_otlp_endpoint,
        traces_endpoint=settings.otel_exporter_otlp_traces_endpoint,
        sampler=settings.otel_traces_sampler,
        sampler_arg=settings.otel_traces_sampler_arg,
    )


@contextlib.contextmanager
def tracing_session(settings: Settings) -> Iterator[None]:
    """Tracing on for the block when the settings ask for it; spans still buffered are sent when
    it ends. Enter it in the process that does the work (after a fork, never before) and before
    `build_container`: HTTP sessions and Mongo clients made earlier are not traced."""
    if not settings.tracing_enabled:
        yield
        return
    tracing = start_tracing(tracing_config(settings))
    try:
        yield
    finally:
        tracing.shutdown()


def _bulk_tracer(settings: Settings) -> OtelBulkTracer | None:
    """Spans for bulk runs when tracing is on; None lets the use cases skip them."""
    return OtelBulkTracer() if settings.tracing_enabled else None


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    cipher = providers.Singleton(_token_cipher, settings)

    #: token_store, refresh_log, delivered_ids: MysqlTokens or SqliteStores, set by `build_container`.
    token_stores = providers.DependenciesContainer()
    #: cache_store, ticket_log, sync_state_store, outbox, change_feed_store, relayed_change_feed,
    #: delivered_ids: MongoCaches or SqliteStores, set by `build_container`.
    cache_stores = providers.DependenciesContainer()
    remote = providers.Container(RemoteServices, settings=settings)

    refresh_dependencies = providers.Singleton(
        RefreshDependencies,
        tokens=token_stores.token_store,
        caches=cache_stores.cache_store,
        ticket_log=cache_stores.ticket_log,
        refresh_log=token_stores.refresh_log,
        passes_source=remote.bytemark,
        token_refresher=remote.bytemark,
        notifier=remote.notifier,
        clock=clock,
        outbox=cache_stores.outbox,
    )
    #: Runs in `serve` (deliveries that failed, or that another process left behind).
    relay = providers.Singleton(
        OutboxRelay,
        cache_stores.outbox,
        cache_stores.ticket_log,
        token_stores.refresh_log,
        token_stores.token_store,
        observer=providers.Singleton(OutboxMetrics),
        change_feed=cache_stores.relayed_change_feed,
        notifier=remote.notifier,
        claims=token_stores.delivered_ids,  # a Slack notice is claimed before it is posted
    )
    #: Runs in `serve` beside the relay: forgets delivered record ids no relay can deliver again.
    delivered_id_sweep = providers.Singleton(
        DeliveredIdSweep,
        cache_stores.outbox,
        providers.Callable(_delivered_id_tables, token_stores.delivered_ids, cache_stores.delivered_ids),
        clock,
    )
    change_feed = providers.Singleton(
        ChangeFeed, cache_stores.change_feed_store, clock, settings.provided.change_feed_retention_days
    )
    core_use_cases = providers.Singleton(
        TicketCacheUseCases,
        refresh_dependencies,
        free_tickets=providers.Callable(FreeTicketPolicy.of, settings.provided.free_ticket_product_uuids),
        cache_timeout_seconds=settings.provided.cache_timeout_seconds,
        bulk_concurrency=settings.provided.bulk_concurrency,
        passes4_retention_days=settings.provided.passes4_retention_days,
        sync_states=cache_stores.sync_state_store,
        sync_policy=providers.Callable(_sync_policy, settings),
        token_refresh_margin_seconds=settings.provided.token_refresh_margin_seconds,
        relay=relay,
        change_feed=change_feed,
        bulk_tracer=providers.Callable(_bulk_tracer, settings),
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
    #: Where `run refresh-stale` / `run bootstrap` send their summary besides the log.
    run_reporter = providers.Selector(
        providers.Callable(_run_reporter_backend, settings),
        pushgateway=providers.Singleton(PushgatewayReporter, settings.provided.pushgateway_url),
        none=providers.Singleton(NoRunReporter),
    )
    #: Runs in `serve`: cache freshness read from the store, whichever process refreshed it.
    freshness_gauges = providers.Singleton(
        FreshnessGaugeRefresher,
        providers.Singleton(
            FreshnessQuery, cache_stores.cache_store, clock, settings.provided.cache_timeout_seconds
        ).provided.read,
        settings.provided.sync_gauges_refresh_seconds,
    )


def build_container(settings: Settings) -> Container:
    """The one place a deployment's stores are chosen: MySQL tokens when MYSQL_URL is set,
    MongoDB caches when MONGODB_URL is set, and one SQLite file for whatever is left."""
    container = Container()
    container.settings.override(providers.Object(settings))
    tokens = MysqlTokens if settings.mysql_url else SqliteStores
    caches = MongoCaches if settings.mongodb_url else SqliteStores
    families = {
        family: providers.Container(family, settings=container.settings, cipher=container.cipher)
        for family in {tokens, caches}  # SQLite for both: one family, so one file and one connection
    }
    container.token_stores.override(families[tokens])
    container.cache_stores.override(families[caches])
    return container


class HasSchema(Protocol):
    """A store that creates its own tables or indexes."""

    async def create_schema(self) -> None:
        """Create them if missing; idempotent, and existing rows stay."""


async def migrate_stores(container: Container) -> list[str]:
    """The one migration (`migrate`, and `serve` and `demo` at start-up): every configured store
    creates its tables and indexes. Returns one line per store."""
    stores: dict[str, providers.Provider[HasSchema]] = {
        "token_store": container.token_stores.token_store,
        "refresh_log": container.token_stores.refresh_log,
        "cache_store": container.cache_stores.cache_store,
        "ticket_log": container.cache_stores.ticket_log,
        "sync_state_store": container.cache_stores.sync_state_store,
        "outbox": container.cache_stores.outbox,
        "change_feed_store": container.cache_stores.change_feed_store,
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
