"""Prometheus metrics of the service, all in one place so names and labels stay consistent.

Label values are bounded sets (method names, status codes, endpoints, outcomes): never a
user id or anything else per-user, which would explode the number of series.
Metrics live in prometheus_client's default registry, served by the METRICS_LISTEN endpoint.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

from application.outbox import OutboxBacklog, Target

# Latency buckets (seconds) for calls that range from a cache read (~1 ms) to a slow
# Bytemark refresh with retries (~tens of seconds).
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

# --- Bytemark API calls ---------------------------------------------------------------

BYTEMARK_REQUEST_SECONDS = Histogram(
    "bytemark_request_duration_seconds",
    "Duration of one HTTP attempt to Bytemark, by endpoint (e.g. 'GET /passes').",
    ["endpoint"],
    buckets=_LATENCY_BUCKETS,
)
BYTEMARK_REQUEST_ERRORS = Counter(
    "bytemark_request_errors_total",
    "Failed Bytemark HTTP attempts, by endpoint and reason (status code class, timeout, reset, "
    "malformed body, invalid_grant).",
    ["endpoint", "reason"],
)
BYTEMARK_RETRIES = Counter(
    "bytemark_request_retries_total",
    "Bytemark attempts retried after a 429, 5xx, timeout or reset, by endpoint.",
    ["endpoint"],
)

# --- Cache reads and refreshes --------------------------------------------------------

CACHE_LOOKUPS = Counter(
    "ticket_cache_lookups_total",
    "Reads of a stored cache, by result ('hit' or 'miss').",
    ["result"],
)
REFRESH_OUTCOMES = Counter(
    "ticket_cache_refresh_outcomes_total",
    "Refreshes by outcome (BUILT, UPDATED, UNCHANGED, FRESH, NO_VALID_TOKEN).",
    ["outcome"],
)
FREE_TICKETS_FOUND = Counter(
    "ticket_cache_free_tickets_found_total",
    "New passes recognised as free tickets.",
)

CACHE_DOCUMENTS_REFUSED = Counter(
    "ticket_cache_documents_refused_total",
    "Cache writes the store refused, nothing written, by reason ('too_large': over the 16 MiB "
    "document limit; 'not_storable': a value the server cannot hold, e.g. on FerretDB v1).",
    ["reason"],
)

# --- Bulk runs (bootstrap and refresh_stale) ------------------------------------------

BULK_USERS = Counter(
    "ticket_cache_bulk_users_total",
    "Users processed by bulk runs, by job ('bootstrap', 'refresh_stale') and result ('ok', 'failed').",
    ["job", "result"],
)
BULK_RUNS_IN_PROGRESS = Gauge(
    "ticket_cache_bulk_runs_in_progress",
    "Bulk runs currently streaming, by job.",
    ["job"],
)


# --- Rider sync state and freshness (bulk runs; the two store-wide gauges also periodically, --
# --- see sync_gauges.py) -------------------------------------------------------------------

# Cache ages from a minute to a month: the hourly job keeps healthy caches near its period.
_AGE_BUCKETS = (60, 300, 900, 1800, 3600, 5400, 7200, 14_400, 43_200, 86_400, 259_200, 604_800, 2_592_000)

SYNC_RIDERS = Gauge(
    "ticket_cache_sync_riders",
    "Riders per sync state (OK, FAILING, AUTH_REQUIRED), read from the store after each bulk run"
    " and every SYNC_GAUGES_REFRESH_SECONDS.",
    ["state"],
)
CACHE_AGE_SECONDS = Histogram(
    "ticket_cache_age_seconds",
    "Age of each rider's cache as a bulk run leaves it (refreshed, fresh or skipped), in seconds.",
    buckets=_AGE_BUCKETS,
)
CACHE_AGE_MAX_SECONDS = Gauge(
    "ticket_cache_age_max_seconds",
    "Oldest cache age seen by the last bulk run, by job.",
    ["job"],
)
TOKENS_EXPIRING = Gauge(
    "bytemark_tokens_expiring_riders",
    "Riders whose Bytemark access token has expired or expires within 24 h, read after each bulk run"
    " and every TOKEN_GAUGE_REFRESH_SECONDS.",
)
BULK_SKIPPED = Counter(
    "ticket_cache_bulk_skipped_total",
    "Riders a bulk run did not call Bytemark for, by job and reason (auth_required, backoff).",
    ["job", "reason"],
)
BULK_STOPPED = Counter(
    "ticket_cache_bulk_runs_stopped_total",
    "Bulk runs stopped early because most riders failed the same way (a general Bytemark outage).",
    ["job"],
)


# --- Freshness read from the cache store (every `serve`, see freshness_gauges.py) -----------

STORE_OLDEST_CACHE_AGE = Gauge(
    "ticket_cache_store_oldest_cache_age_seconds",
    "Age of the oldest cache in the store (0 when it holds none), read every SYNC_GAUGES_REFRESH_SECONDS.",
)
STORE_STALE_RIDERS = Gauge(
    "ticket_cache_store_stale_riders",
    "Riders whose stored cache is older than max_age_seconds (CACHE_TIMEOUT_SECONDS), read every"
    " SYNC_GAUGES_REFRESH_SECONDS.",
    ["max_age_seconds"],
)


# --- Outbox and change feed -----------------------------------------------------------

OUTBOX_PENDING = Gauge(
    "ticket_cache_outbox_pending_records",
    "Outbox records stored with the caches and not yet delivered, by target"
    " (ticket_log, refresh_log, token).",
    ["target"],
)
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    "ticket_cache_outbox_oldest_pending_age_seconds",
    "Age of the oldest undelivered outbox record (0 when none is pending).",
)
OUTBOX_DELIVERY_FAILURES = Counter(
    "ticket_cache_outbox_delivery_failures_total",
    "Outbox deliveries that failed and will be retried, by target.",
    ["target"],
)
CHANGE_FEED_EVENTS_SENT = Counter(
    "ticket_cache_change_feed_events_sent_total",
    "Change events sent to WatchChanges subscribers.",
)
CHANGE_FEED_SUBSCRIBERS = Gauge(
    "ticket_cache_change_feed_subscribers",
    "WatchChanges streams currently open.",
)


# --- Recording helpers ----------------------------------------------------------------


def observe_bytemark_call(endpoint: str, outcome: str, seconds: float) -> None:
    """The Bytemark client's `on_call` observer: one HTTP attempt finished."""
    BYTEMARK_REQUEST_SECONDS.labels(endpoint).observe(seconds)
    if not outcome.startswith("2"):
        BYTEMARK_REQUEST_ERRORS.labels(endpoint, outcome).inc()


class OutboxMetrics:
    """The relay's observer: delivery failures and the backlog after each pass."""

    def delivery_failed(self, target: Target) -> None:
        OUTBOX_DELIVERY_FAILURES.labels(target.value).inc()

    def backlog(self, backlog: OutboxBacklog) -> None:
        for target, count in backlog.pending.items():
            OUTBOX_PENDING.labels(target.value).set(count)
        oldest = backlog.oldest_created_at
        OUTBOX_OLDEST_PENDING_AGE.set(0 if oldest is None else max(0.0, time.time() - oldest))


def count_refused_document(reason: str) -> None:
    """A cache store's `on_refused` observer: a write the store refused ('too_large', 'not_storable')."""
    CACHE_DOCUMENTS_REFUSED.labels(reason).inc()
