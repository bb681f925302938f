"""Service configuration from environment variables, validated once at start-up.

`load_settings()` reads a mapping (the process environment by default) and either returns an
immutable `Settings` or raises `ConfigError` naming every offending variable at once, so an
operator fixes a deployment in one round trip. Secret values are never echoed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from adapters.driven.storage.crypto.token_cipher import decode_aes_key
from domain.free_tickets import DEFAULT_FREE_TICKET_PRODUCT_UUIDS as _DEFAULT_FREE_SET

DEFAULT_FREE_TICKET_PRODUCT_UUIDS: tuple[str, ...] = tuple(sorted(_DEFAULT_FREE_SET))
MIB = 1024 * 1024
THIRTY_DAYS_SECONDS = 30 * 24 * 3600
#: OTEL_TRACES_SAMPLER's values (the OpenTelemetry SDK's names).
TRACE_SAMPLERS: tuple[str, ...] = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)

#: Variables `serve` cannot run without; the CLI passes them to `Settings.require`.
SERVE_REQUIRED: tuple[str, ...] = (
    "BYTEMARK_CUSTOMER_API_URL",
    "BYTEMARK_ACCOUNT_API_URL",
    "BYTEMARK_CLIENT_ID",
    "BYTEMARK_CLIENT_SECRET",
)

#: Variables whose value must never appear in an error message: secrets, and database URLs
#: because they usually carry a password.
UNECHOED_VARIABLES: frozenset[str] = frozenset(
    {
        "BYTEMARK_CLIENT_SECRET",
        "SLACK_BOT_TOKEN",
        "TOKEN_ENCRYPTION_KEY",
        "GRPC_AUTH_TOKEN",
        "MYSQL_URL",
        "MONGODB_URL",
    }
)


class ConfigError(Exception):
    """The configuration is unusable. `problems` holds one `VARIABLE: what is wrong` line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n  " + "\n  ".join(self.problems))


# --- value parsers: each takes the raw string and raises ValueError with a readable reason ---


def split_host_port(value: str) -> tuple[str, int]:
    """`host:port` or `[ipv6]:port` -> (host, port); raises ValueError when malformed."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ValueError("must be host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("must be host:port (put an IPv6 host in brackets)")
    if not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError("must be host:port with a port between 0 and 65535")
    return host, int(port_text)


def _host_port(value: Any) -> Any:
    if isinstance(value, str):
        split_host_port(value)
    return value


def _int_between(low: int, high: int) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = int(value, 10)
            except ValueError:
                raise ValueError(f"must be an integer between {low} and {high}") from None
        if isinstance(value, int) and not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _number(*, minimum: float, exclusive: bool) -> Callable[[Any], Any]:
    relation = "greater than" if exclusive else "at least"

    def parse(value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"must be a number {relation} {minimum:g}") from None
        if isinstance(value, float | int):
            too_small = value <= minimum if exclusive else value < minimum
            if too_small or value != value or value == float("inf"):
                raise ValueError(f"must be a number {relation} {minimum:g}")
        return value

    return parse


def _ratio(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError("must be a number between 0 and 1") from None
    if isinstance(value, float | int) and not 0.0 <= value <= 1.0:
        raise ValueError("must be a number between 0 and 1")
    return value


def _url(*schemes: str) -> Callable[[Any], Any]:
    expected = " or ".join(f"{scheme}://" for scheme in schemes)

    def parse(value: Any) -> Any:
        if isinstance(value, str):
            try:
                parts = urlsplit(value)
                parts.port  # noqa: B018 - raises ValueError on a non-numeric port
            except ValueError:
                raise ValueError(f"must be a URL starting with {expected}") from None
            if parts.scheme.lower() not in schemes or not parts.hostname:
                raise ValueError(f"must be a URL starting with {expected} and naming a host")
            # Base URLs are joined with paths later; one canonical form avoids `//passes`.
            if "http" in schemes:
                return value.rstrip("/")
        return value

    return parse


def _uuid_list(value: Any) -> Any:
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",") if item.strip()]
        if not items:
            raise ValueError("must list at least one UUID, comma-separated")
        canonical: list[str] = []
        for item in items:
            try:
                canonical.append(str(uuid.UUID(item)))
            except ValueError:
                raise ValueError(f"{item!r} is not a valid UUID") from None
        return tuple(dict.fromkeys(canonical))  # de-duplicate, keep order
    return value


def _aes_key(value: Any) -> Any:
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if isinstance(raw, str):
        try:
            decode_aes_key(raw)
        except ValueError as problem:  # says what is wrong (e.g. the decoded length), never the value
            raise ValueError(f"must be base64 of a 16, 24 or 32 byte AES key: {problem}") from None
    return value


def _existing_file(value: Any) -> Any:
    if isinstance(value, str | Path) and not Path(value).is_file():
        raise ValueError("file does not exist or is not a regular file")
    return value


def _choice(*allowed: str, upper: bool) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if isinstance(value, str):
            value = value.upper() if upper else value.lower()
            if value not in allowed:
                raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return parse


def _non_empty(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


def _with_slash(value: str) -> str:
    """Slack's client appends method names (`chat.postMessage`) to the base URL as is."""
    return value if value.endswith("/") else value + "/"


HostPort = Annotated[str, BeforeValidator(_host_port)]
HttpUrl = Annotated[str, BeforeValidator(_url("http", "https"))]
Name = Annotated[str, BeforeValidator(_non_empty)]
ExistingFile = Annotated[Path, BeforeValidator(_existing_file)]


class Settings(BaseSettings):
    """Validated configuration. Field names are the variable names in lower case; each field's
    description is its row in docs/configuration.md (tools/render_settings_docs.py)."""

    # Values come only from `load_settings`' mapping: no implicit os.environ, .env or secrets
    # directory, so tests never see the developer's environment and start-up is predictable.
    model_config = SettingsConfigDict(frozen=True, extra="ignore", validate_default=True)

    grpc_listen: HostPort = Field("127.0.0.1:50051", description="host:port the gRPC server binds.")
    grpc_event_loop: Annotated[
        Literal["uvloop", "asyncio"], BeforeValidator(_choice("uvloop", "asyncio", upper=False))
    ] = Field(
        "asyncio",
        description="`asyncio` (the standard loop) or `uvloop` (libuv, installed). Opt-in: on the shared"
        " benchmark machine its effect stayed inside the noise. If uvloop cannot be imported the service"
        " logs a warning and uses asyncio.",
    )
    grpc_workers: Annotated[int, BeforeValidator(_int_between(1, 64))] = Field(
        1,
        description="Server processes (1..64) sharing GRPC_LISTEN's port through SO_REUSEPORT; the kernel"
        " spreads new connections over them (1: this process serves). On Kubernetes prefer replicas.",
    )
    grpc_max_message_bytes: Annotated[int, BeforeValidator(_int_between(MIB, 2**31 - 1))] = Field(
        64 * MIB,
        description="Largest gRPC response (a rider with 10,000 passes exceeds gRPC's 4 MiB default);"
        " requests have their own, smaller bound, GRPC_MAX_RECEIVE_BYTES.",
    )
    # Hardening (issue 21): requests are bounded apart from responses, by their decompressed size.
    grpc_max_receive_bytes: Annotated[int, BeforeValidator(_int_between(64 * 1024, 2**31 - 1))] = Field(
        MIB,
        description="Largest gRPC request, decompressed (64 KiB..2 GiB). gRPC checks it before any"
        " interceptor, authentication included, so keep it small: the largest valid request"
        " (10,000 user_ids) is about 100 KB.",
    )
    grpc_auth_token: SecretStr | None = Field(
        None,
        description="When set, every RPC except health needs `authorization: Bearer <token>`; this token"
        " grants the `operate` scope (every method).",
    )
    # --- scoped, rotatable credentials (issue 21) ---
    grpc_auth_tokens_file: ExistingFile | None = Field(
        None,
        description="File of scoped credentials, one a line: `read <token>`, `operate <token>`, or"
        " `<scope> san:<name>` for a mutual-TLS client certificate's SAN (`#` comments allowed)."
        " `read` allows GetTicketCache, GetSyncStatus, ListSyncStatuses and WatchChanges;"
        " `operate` everything. Re-read when its content changes (a rotated Secret); a file that"
        " does not parse keeps the last good set. Works beside GRPC_AUTH_TOKEN (an `operate` token).",
    )
    grpc_auth_tokens_poll_seconds: Annotated[float, BeforeValidator(_number(minimum=0, exclusive=True))] = (
        Field(5.0, description="How often GRPC_AUTH_TOKENS_FILE is checked for a new content.")
    )
    grpc_tls_cert_file: ExistingFile | None = Field(
        None, description="PEM server certificate; with GRPC_TLS_KEY_FILE (both or neither) turns on TLS."
    )
    grpc_tls_key_file: ExistingFile | None = Field(None, description="PEM key of GRPC_TLS_CERT_FILE.")
    grpc_tls_client_ca_file: ExistingFile | None = Field(
        None, description="PEM CA that client certificates must chain to: mutual TLS (needs TLS on)."
    )
    grpc_shutdown_grace_seconds: Annotated[float, BeforeValidator(_number(minimum=0, exclusive=True))] = (
        Field(
            5.0,
            description="On SIGTERM/Ctrl-C health turns NOT_SERVING, new calls are refused, bulk streams end"
            " UNAVAILABLE, and unary calls in flight get this long to finish. Keep it below the pod's"
            " terminationGracePeriodSeconds (the chart sets 20 s of 30 s).",
        )
    )

    # --- HTTP port (Connect, gRPC-Web and JSON over HTTP; adapters.driving.http_api) ---
    http_listen: HostPort | None = Field(
        default=None,
        description="host:port of the HTTP port serving TicketCacheService as Connect (JSON or binary),"
        " gRPC-Web and gRPC over HTTP/1.1 and HTTP/2, with the gRPC port's bearer token, message limit and"
        " TLS (docs/http-json.md). Unset: off. `demo` serves it on 127.0.0.1:8080 unless set.",
    )

    bytemark_customer_api_url: HttpUrl | None = Field(
        None, description="Bytemark customer API base URL (required for `serve`)."
    )
    bytemark_account_api_url: HttpUrl | None = Field(
        None, description="Bytemark account (OAuth) API base URL (required for `serve`)."
    )
    bytemark_client_id: str | None = Field(
        None, description="OAuth client id for the refresh-token exchange (required for `serve`)."
    )
    bytemark_client_secret: SecretStr | None = Field(
        None, description="OAuth client secret for the refresh-token exchange (required for `serve`)."
    )
    bytemark_timeout_seconds: Annotated[float, BeforeValidator(_number(minimum=0, exclusive=True))] = Field(
        10.0,
        description="Timeout per HTTP attempt, in Bytemark's time: time our own event loop was late"
        " (CPU starvation, a pause) does not count.",
    )
    bytemark_max_attempts: Annotated[int, BeforeValidator(_int_between(1, 10))] = Field(
        4, description="Attempts per call on 5xx, timeout, reset or 429 (1..10)."
    )
    bytemark_rate_limit_rps: Annotated[float, BeforeValidator(_number(minimum=0, exclusive=False))] = Field(
        0.0, description="Process-wide cap on Bytemark requests per second; 0 = unlimited."
    )

    mysql_url: Annotated[str, BeforeValidator(_url("mysql"))] | None = Field(
        default=None,
        repr=False,
        description="`mysql://user:pass@host:3306/db`: tokens and refresh log in MySQL/MariaDB; optional"
        " `?connect_timeout=5&query_timeout=10` (seconds) bound connecting and each statement.",
    )
    mongodb_url: Annotated[str, BeforeValidator(_url("mongodb", "mongodb+srv"))] | None = Field(
        default=None, repr=False, description="`mongodb://…/db`: caches and ticket log in MongoDB."
    )
    mongodb_database: str | None = Field(
        None, description="MongoDB database name; defaults to the path of MONGODB_URL."
    )
    mongodb_client: Annotated[
        Literal["motor", "pymongo"], BeforeValidator(_choice("motor", "pymongo", upper=False))
    ] = Field(
        "motor",
        description="`motor` (the design card's choice, end-of-life since 2026-05-14, critical fixes until"
        " 2027-05-14) or `pymongo` (PyMongo's AsyncMongoClient, its successor). Both pass the same tests:"
        " switch to `pymongo` at your next deployment.",
    )
    mongodb_cache_collection: Name = Field(
        "bytemarkticketscaches", description="Cache collection (the old Mongoose name)."
    )
    mongodb_ticket_log_collection: Name = Field("bytemarkticketslogs", description="Ticket-log collection.")
    mongodb_sync_status_collection: Name = Field(
        "bytemarksyncstatuses",
        description="Per-rider sync states (their own collection, so cache documents keep Node's shape).",
    )
    # -- MongoDB server profile (issue 20): which strategies the Mongo adapters use --------------
    mongodb_profile: Annotated[
        Literal["auto", "mongodb", "ferretdb"],
        BeforeValidator(_choice("auto", "mongodb", "ferretdb", upper=False)),
    ] = Field(
        "auto",
        description="MongoDB server profile: `mongodb` (no locks, one range query per feed read, ordinary"
        " bulk writes; set it in production), `ferretdb` (FerretDB v1's workarounds), or `auto` (decided"
        " once from buildInfo at start-up). See docs/storage-mongodb.md.",
    )
    sqlite_path: Name = Field(
        "var/ticket-cache.sqlite3",
        description="Embedded store for whatever has no MySQL/MongoDB URL (`demo`: `var/demo.sqlite3`).",
    )

    cache_timeout_seconds: Annotated[int, BeforeValidator(_int_between(1, THIRTY_DAYS_SECONDS))] = Field(
        3600, description="Age after which a timeout check refreshes (1 s..30 days)."
    )
    bulk_concurrency: Annotated[int, BeforeValidator(_int_between(1, 512))] = Field(
        64, description="Default riders refreshed at once in bulk runs (1..512)."
    )
    passes4_retention_days: Annotated[int, BeforeValidator(_int_between(1, 36_500))] | None = Field(
        None,
        description="Unset keeps every expired `passes4` entry forever (the Node behaviour). N (1..36500):"
        " at each update, drop an entry Bytemark no longer lists whose `timestamp` is more than N days"
        " old. Keeps heavy riders under MongoDB's 16 MiB document limit.",
    )
    change_feed_retention_days: Annotated[int, BeforeValidator(_int_between(1, 365))] = Field(
        7,
        description="How long the change feed keeps events (1..365); an hourly sweep removes older ones,"
        " and a cursor from before them gets OUT_OF_RANGE.",
    )
    free_ticket_product_uuids: Annotated[tuple[str, ...], BeforeValidator(_uuid_list)] = Field(
        DEFAULT_FREE_TICKET_PRODUCT_UUIDS,
        description="Comma-separated product UUIDs that count as free tickets (default: the two loyalty"
        " products).",
    )
    token_encryption_key: Annotated[SecretStr, BeforeValidator(_aes_key)] | None = Field(
        None,
        description="Base64 AES key (16, 24 or 32 bytes): tokens are stored AES-GCM encrypted (`enc:v1:`"
        " prefix). Do not rotate it in place: a new key cannot read the stored tokens.",
    )
    token_refresh_margin_seconds: Annotated[int, BeforeValidator(_int_between(0, 86_400))] = Field(
        60,
        description="Exchange the refresh token first when `token_expires_at` is this close (0..86400;"
        " 0 = only when expired), instead of spending a 401 round trip.",
    )
    sync_backoff_base_seconds: Annotated[int, BeforeValidator(_int_between(1, 86_400))] = Field(
        60,
        description="First backoff of a FAILING rider (1..86400); doubles per consecutive failure,"
        " with jitter.",
    )
    sync_backoff_max_seconds: Annotated[int, BeforeValidator(_int_between(1, THIRTY_DAYS_SECONDS))] = Field(
        21_600, description="Backoff cap (6 h); must be >= SYNC_BACKOFF_BASE_SECONDS."
    )
    # --- riding out a store blip in bulk runs (issue 21) ---
    store_outage_grace_seconds: Annotated[float, BeforeValidator(_number(minimum=0, exclusive=True))] = Field(
        30.0,
        description="A bulk run whose store stops answering pauses new riders and retries the ones"
        " caught by it; a store still away after this long stops the run (a `stopped` event), with"
        " nobody put into backoff. Unary calls fail fast with UNAVAILABLE regardless.",
    )

    slack_bot_token: SecretStr | None = Field(
        None, description="Slack bot token; with SLACK_CHANNEL_ID (both or neither) turns Slack notices on."
    )
    slack_channel_id: str | None = Field(None, description="Slack channel the notices go to.")
    slack_api_url: Annotated[str, BeforeValidator(_url("http", "https")), AfterValidator(_with_slash)] = (
        Field(
            "https://slack.com/api/",
            description="Slack Web API base URL (for a proxy, or a local stand-in in tests).",
        )
    )
    project_name: Name = Field("connectsmart", description="Project name shown in Slack notices.")
    project_stage: Name = Field("production", description="Stage shown in Slack notices.")

    metrics_listen: HostPort | None = Field(
        None,
        description="host:port of the Prometheus `/metrics` endpoint (worker i of GRPC_WORKERS serves"
        " port + i).",
    )
    sync_gauges_refresh_seconds: Annotated[int, BeforeValidator(_int_between(1, 86_400))] = Field(
        60,
        description="How often `serve` re-reads `ticket_cache_sync_riders` (one count per sync state)"
        " and the store freshness gauges (`ticket_cache_store_oldest_cache_age_seconds`,"
        " `ticket_cache_store_stale_riders`) from the store (1..86400). Every replica and worker"
        " reports the store-wide figure: aggregate with `max`, not `sum`.",
    )
    token_gauge_refresh_seconds: Annotated[int, BeforeValidator(_int_between(1, 86_400))] = Field(
        1800,
        description="How often `serve` re-counts `bytemark_tokens_expiring_riders` (1..86400). On MySQL"
        " the count scans all of `bytemark_tokens` (about 2 s of MariaDB CPU per million riders, in"
        " every process), hence its own, slower period.",
    )
    # --- Job run summaries (obs-metrics): where `run refresh-stale` / `run bootstrap` push theirs ---
    pushgateway_url: HttpUrl | None = Field(
        None,
        description="Prometheus Pushgateway base URL (e.g. `http://pushgateway:9091`): `run refresh-stale`"
        " and `run bootstrap` push their run summary there, grouped by job and shard. Unset: the summary"
        " is only the run's final log line.",
    )
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"],
        BeforeValidator(_choice("DEBUG", "INFO", "WARNING", "ERROR", upper=True)),
    ] = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: Annotated[Literal["json", "text"], BeforeValidator(_choice("json", "text", upper=False))] = (
        Field("json", description="`json` (one object per line, with the request id) or `text`.")
    )

    # --- OpenTelemetry traces (docs/tracing.md): the standard OTEL_* variables, read here so a
    # typo is a start-up error and the configuration page lists them. Off unless an endpoint or
    # OTEL_TRACES_EXPORTER=otlp asks for it.
    otel_traces_exporter: Annotated[
        Literal["otlp", "none"], BeforeValidator(_choice("otlp", "none", upper=False))
    ] | None = Field(
        default=None,
        description="otlp turns tracing on (to the OTLP endpoint, localhost by default); none keeps it off "
        "even with an endpoint set. Unset: tracing is on exactly when OTEL_EXPORTER_OTLP_ENDPOINT "
        "or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.",
    )
    otel_exporter_otlp_endpoint: HttpUrl | None = Field(
        default=None,
        description="Base URL of the OTLP receiver (a collector, Jaeger): http://host:4318 for "
        "http/protobuf, http://host:4317 for grpc. Setting it turns tracing on.",
    )
    otel_exporter_otlp_traces_endpoint: HttpUrl | None = Field(
        default=None,
        description="Full URL for traces (http/protobuf: including /v1/traces); overrides "
        "OTEL_EXPORTER_OTLP_ENDPOINT. Setting it turns tracing on.",
    )
    otel_exporter_otlp_protocol: Annotated[
        Literal["grpc", "http/protobuf"], BeforeValidator(_choice("grpc", "http/protobuf", upper=False))
    ] = Field(default="http/protobuf", description="OTLP transport: http/protobuf (the default) or grpc.")
    otel_traces_sampler: Annotated[str, BeforeValidator(_choice(*TRACE_SAMPLERS, upper=False))] = Field(
        default="parentbased_always_on",
        description="Which traces are recorded: parentbased_traceidratio follows the caller's "
        "traceparent decision and samples OTEL_TRACES_SAMPLER_ARG of the rest.",
    )
    otel_traces_sampler_arg: Annotated[float, BeforeValidator(_ratio)] | None = Field(
        default=None,
        description="The ratio (0 to 1) of the traceidratio samplers; 1.0 when unset. "
        "Each bulk-run rider is a trace of its own, sampled at this ratio.",
    )
    otel_service_name: Name = Field(
        default="bytemark-ticket-cache", description="service.name of every span this process exports."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    @property
    def tls_enabled(self) -> bool:
        """Both GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE are set (validation allows both or neither)."""
        return self.grpc_tls_cert_file is not None and self.grpc_tls_key_file is not None

    @property
    def tracing_enabled(self) -> bool:
        """OTEL_TRACES_EXPORTER=otlp, or an OTLP endpoint set without OTEL_TRACES_EXPORTER=none."""
        if self.otel_traces_exporter is not None:
            return self.otel_traces_exporter == "otlp"
        return bool(self.otel_exporter_otlp_endpoint or self.otel_exporter_otlp_traces_endpoint)

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None and bool(self.slack_channel_id)

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redaction filter: each SecretStr setting and the
        passwords inside the database URLs. Derived from the fields, so a new secret setting is
        covered without anyone remembering to list it."""
        values = [
            value.get_secret_value()
            for value in (getattr(self, name) for name in type(self).model_fields)
            if isinstance(value, SecretStr)
        ]
        for url in (self.mysql_url, self.mongodb_url):
            password = urlsplit(url).password if url else None
            if password:
                values.append(unquote(password))
        return values

    def require(self, *variables: str) -> None:
        """Raise ConfigError naming each of `variables` that is unset (e.g. SERVE_REQUIRED)."""
        missing = [name for name in variables if getattr(self, name.lower()) is None]
        if missing:
            raise ConfigError([f"{name}: required, not set" for name in missing])


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `environ` (default: the process environment). Empty values count as unset."""
    source = os.environ if environ is None else environ
    raw = {
        name: value.strip()
        for name, value in source.items()
        if name.lower() in Settings.model_fields and name.isupper() and value.strip()
    }
    problems = _cross_field_problems(raw)
    values: dict[str, Any] = {name.lower(): value for name, value in raw.items()}
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        problems = _field_problems(exc, raw) + problems
    else:
        if not problems:
            return settings
    raise ConfigError(problems)


def _cross_field_problems(raw: Mapping[str, str]) -> list[str]:
    """Rules spanning variables, checked on presence alone so they are reported together
    with any per-field errors."""
    problems: list[str] = []
    has_cert, has_key = "GRPC_TLS_CERT_FILE" in raw, "GRPC_TLS_KEY_FILE" in raw
    if has_cert != has_key:
        missing = "GRPC_TLS_KEY_FILE" if has_cert else "GRPC_TLS_CERT_FILE"
        present = "GRPC_TLS_CERT_FILE" if has_cert else "GRPC_TLS_KEY_FILE"
        problems.append(f"{missing}: required when {present} is set (set both or neither)")
    if "GRPC_TLS_CLIENT_CA_FILE" in raw and not (has_cert and has_key):
        problems.append(
            "GRPC_TLS_CLIENT_CA_FILE: mutual TLS needs GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE too"
        )
    has_token, has_channel = "SLACK_BOT_TOKEN" in raw, "SLACK_CHANNEL_ID" in raw
    if has_token != has_channel:
        missing = "SLACK_CHANNEL_ID" if has_token else "SLACK_BOT_TOKEN"
        present = "SLACK_BOT_TOKEN" if has_token else "SLACK_CHANNEL_ID"
        problems.append(f"{missing}: required when {present} is set (set both or neither)")
    base, cap = raw.get("SYNC_BACKOFF_BASE_SECONDS", "60"), raw.get("SYNC_BACKOFF_MAX_SECONDS", "21600")
    if base.isdigit() and cap.isdigit() and int(cap) < int(base):  # else the field itself is reported
        problems.append(
            f"SYNC_BACKOFF_MAX_SECONDS: must be >= SYNC_BACKOFF_BASE_SECONDS ({base}), got {cap!r}"
        )
    mongodb_url = raw.get("MONGODB_URL")
    if mongodb_url and "MONGODB_DATABASE" not in raw:
        try:
            database = urlsplit(mongodb_url).path.lstrip("/")
        except ValueError:
            database = "?"  # the URL itself is reported as invalid
        if not database:
            problems.append("MONGODB_DATABASE: required when MONGODB_URL names no database")
    return problems


def _field_problems(exc: ValidationError, raw: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        if not error["loc"]:
            continue
        variable = str(error["loc"][0]).upper()
        ctx = error.get("ctx") or {}
        reason = str(ctx["error"]) if error["type"] == "value_error" and "error" in ctx else error["msg"]
        if variable in UNECHOED_VARIABLES:
            problems.append(f"{variable}: {reason} (value not shown)")
        else:
            problems.append(f"{variable}: {reason}, got {raw.get(variable, '')!r}")
    return problems
