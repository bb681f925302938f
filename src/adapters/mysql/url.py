"""Parse `mysql://user:password@host:port/dbname` without ever echoing the password."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

_SCHEMES = ("mysql", "mariadb")
_DEFAULT_PORT = 3306


@dataclass(frozen=True, slots=True)
class MysqlTarget:
    host: str
    port: int
    user: str
    database: str
    password: str = field(default="", repr=False)

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
    return MysqlTarget(
        host=parts.hostname,
        port=port,
        user=unquote(parts.username),
        database=database,
        password=unquote(parts.password or ""),
    )
