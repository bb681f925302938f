"""Service configuration from environment variables (SPEC section 5), validated once at start-up.

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
    """Validated configuration. Field names are the variable names in lower case."""

    # Values come only from `load_settings`' mapping: no implicit os.environ, .env or secrets
    # directory, so tests never see the developer's environment and start-up is predictable.
    model_config = SettingsConfigDict(frozen=True, extra="ignore", validate_default=True)

    grpc_listen: HostPort = "127.0.0.1:50051"
    #: asyncio (the standard loop, the default) or uvloop (libuv); uvloop falls back to asyncio.
    grpc_event_loop: Annotated[
        Literal["uvloop", "asyncio"], BeforeValidator(_choice("uvloop", "asyncio", upper=False))
    ] = "asyncio"
    #: Server processes sharing GRPC_LISTEN's port through SO_REUSEPORT (1 = this process serves).
    grpc_workers: Annotated[int, BeforeValidator(_int_between(1, 64))] = 1
    grpc_max_message_bytes: Annotated[int, BeforeValidator(_int_between(MIB, 2**31 - 1))] = 64 * MIB
    grpc_auth_token: SecretStr | None = None
    grpc_tls_cert_file: ExistingFile | None = None
    grpc_tls_key_file: ExistingFile | None = None
    grpc_tls_client_ca_file: ExistingFile | None = None
    # After SIGTERM: how long unary calls in flight may finish (keep below the pod's termination grace).
    grpc_shutdown_grace_seconds: Annotated[float, BeforeValidator(_number(minimum=0, exclusive=True))] = 5.0

    bytemark_customer_api_url: HttpUrl | None = None
    bytemark_account_api_url: HttpUrl | None = None
    bytemark_client_id: str | None = None
    bytemark_client_secret: SecretStr | None = None
    bytemark_timeout_seconds: Annotated[float, BeforeValidator(_number(minimum=0, exclusive=True))] = 10.0
    bytemark_max_attempts: Annotated[int, BeforeValidator(_int_between(1, 10))] = 4
    bytemark_rate_limit_rps: Annotated[float, BeforeValidator(_number(minimum=0, exclusive=False))] = 0.0

    mysql_url: Annotated[str, BeforeValidator(_url("mysql"))] | None = Field(default=None, repr=False)
    mongodb_url: Annotated[str, BeforeValidator(_url("mongodb", "mongodb+srv"))] | None = Field(
        default=None, repr=False
    )
    mongodb_database: str | None = None
    #: motor (the design card's choice) or pymongo (AsyncMongoClient, motor's successor).
    mongodb_client: Annotated[
        Literal["motor", "pymongo"], BeforeValidator(_choice("motor", "pymongo", upper=False))
    ] = "motor"
    mongodb_cache_collection: Name = "bytemarkticketscaches"
    mongodb_ticket_log_collection: Name = "bytemarkticketslogs"
    mongodb_sync_status_collection: Name = "bytemarksyncstatuses"
    # -- MongoDB server profile (issue 20): which strategies the Mongo adapters use --------------
    mongodb_profile: Annotated[
        Literal["auto", "mongodb", "ferretdb"],
        BeforeValidator(_choice("auto", "mongodb", "ferretdb", upper=False)),
    ] = Field(
        default="auto",
        description="MongoDB server profile: `mongodb` (no locks, one range query per feed read, ordinary"
        " bulk writes), `ferretdb` (FerretDB v1's workarounds), or `auto` (decided once from buildInfo"
        " at start-up).",
    )
    sqlite_path: Name = "var/ticket-cache.sqlite3"

    cache_timeout_seconds: Annotated[int, BeforeValidator(_int_between(1, THIRTY_DAYS_SECONDS))] = 3600
    bulk_concurrency: Annotated[int, BeforeValidator(_int_between(1, 512))] = 64
    #: Unset keeps expired passes4 entries forever (Node); N drops those unlisted for N days.
    passes4_retention_days: Annotated[int, BeforeValidator(_int_between(1, 36_500))] | None = None
    change_feed_retention_days: Annotated[int, BeforeValidator(_int_between(1, 365))] = 7
    free_ticket_product_uuids: Annotated[tuple[str, ...], BeforeValidator(_uuid_list)] = (
        DEFAULT_FREE_TICKET_PRODUCT_UUIDS
    )
    token_encryption_key: Annotated[SecretStr, BeforeValidator(_aes_key)] | None = None
    token_refresh_margin_seconds: Annotated[int, BeforeValidator(_int_between(0, 86_400))] = 60
    sync_backoff_base_seconds: Annotated[int, BeforeValidator(_int_between(1, 86_400))] = 60
    sync_backoff_max_seconds: Annotated[int, BeforeValidator(_int_between(1, THIRTY_DAYS_SECONDS))] = 21_600

    slack_bot_token: SecretStr | None = None
    slack_channel_id: str | None = None
    #: Slack Web API base URL (a stand-in in tests); AsyncWebClient joins method names onto it.
    slack_api_url: Annotated[str, BeforeValidator(_url("http", "https")), AfterValidator(_with_slash)] = (
        "https://slack.com/api/"
    )
    project_name: Name = "connectsmart"
    project_stage: Name = "production"

    metrics_listen: HostPort | None = None
    #: How often `serve` re-reads the riders-per-sync-state and expiring-token gauges from the stores.
    sync_gauges_refresh_seconds: Annotated[int, BeforeValidator(_int_between(1, 86_400))] = 60
    #: How often `serve` re-counts riders with expiring tokens (a full scan of `bytemark_tokens` on MySQL).
    token_gauge_refresh_seconds: Annotated[int, BeforeValidator(_int_between(1, 86_400))] = 1800
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"],
        BeforeValidator(_choice("DEBUG", "INFO", "WARNING", "ERROR", upper=True)),
    ] = "INFO"
    log_format: Annotated[Literal["json", "text"], BeforeValidator(_choice("json", "text", upper=False))] = (
        "json"
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
