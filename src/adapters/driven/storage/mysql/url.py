"""Parse `mysql://user:password@host:port/dbname[?connect_timeout=s&query_timeout=s]` without ever
echoing the password."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

_SCHEMES = ("mysql", "mariadb")
_DEFAULT_PORT = 3306
#: Query options understood here (seconds); any other option is left alone, as before.
TIMEOUT_OPTIONS = ("connect_timeout", "query_timeout")


@dataclass(frozen=True, slots=True)
class MysqlTarget:
    host: str
    port: int
    user: str
    database: str
    password: str = field(default="", repr=False)
    connect_timeout: float | None = None  # seconds to open a connection (TCP + handshake)
    query_timeout: float | None = None  # seconds one statement may take, fetching included

    def describe(self) -> str:
        """For logs and error messages: everything but the password."""
        return f"{self.user}@{self.host}:{self.port}/{self.database}"


def parse_mysql_url(url: str) -> MysqlTarget:
    """Raises ValueError; messages describe the problem, never the URL (it holds the password)."""
    form = "expected mysql://user:password@host:port/dbname"
    try:
        parts = urlsplit(url.strip())
        port = parts.port or _DEFAULT_PORT
    except ValueError:
        raise ValueError(f"MySQL URL is malformed or has a bad port; {form}") from None
    if parts.scheme not in _SCHEMES:
        raise ValueError(f"MySQL URL scheme must be one of {', '.join(_SCHEMES)}; {form}")
    if not parts.hostname:
        raise ValueError(f"MySQL URL has no host; {form}")
    if not parts.username:
        raise ValueError(f"MySQL URL has no user; {form}")
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise ValueError(f"MySQL URL must name one database; {form}")
    timeouts = _timeouts(parts.query)
    return MysqlTarget(
        host=parts.hostname,
        port=port,
        user=unquote(parts.username),
        database=database,
        password=unquote(parts.password or ""),
        connect_timeout=timeouts.get("connect_timeout"),
        query_timeout=timeouts.get("query_timeout"),
    )


def _timeouts(query: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for name, text in parse_qsl(query, keep_blank_values=True):
        if name not in TIMEOUT_OPTIONS:
            continue
        try:
            seconds = float(text)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(f"MySQL URL option {name} must be a number of seconds > 0")
        found[name] = seconds
    return found
