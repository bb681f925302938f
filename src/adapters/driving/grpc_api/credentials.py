"""Scoped, rotatable credentials: which scope a call's bearer token or client certificate grants.

Free of gRPC, so any transport (gRPC, HTTP/Connect) asks the same question through
`Credentials.granted_scope(authorization, peer_names)` and `required_scope(method)`.

The tokens file (GRPC_AUTH_TOKENS_FILE) holds one credential a line, `<scope> <token>` or
`<scope> san:<name>` (a mutual-TLS client certificate's subject alternative name); blank lines
and `#` lines are ignored. Several tokens may share a scope: that is the overlap of a rotation.
`CredentialsFile.watch()` re-reads it when its content changes (polling: a mounted Kubernetes
Secret changes by a symlink swap that inotify on the file misses); a file that does not parse
keeps the last good set. No token is ever logged or put into an error message.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

K = TypeVar("K", str, bytes)
log = logging.getLogger(__name__)

SAN_PREFIX = "san:"


class Scope(enum.IntEnum):
    """What a credential allows; a higher scope includes the lower ones."""

    READ = 1
    OPERATE = 2

    @property
    def label(self) -> str:
        return self.name.lower()


_SCOPES_BY_LABEL = {scope.label: scope for scope in Scope}

#: Methods a `read` credential may call: they change nothing (reflection only describes the API).
READ_METHODS = frozenset(
    {"GetTicketCache", "GetSyncStatus", "ListSyncStatuses", "WatchChanges", "ServerReflectionInfo"}
)


def required_scope(method: str) -> Scope:
    """The scope a method needs; `method` is a full path (`/package.Service/Method`) or a name.
    Anything not known to be read-only needs `operate`."""
    return Scope.READ if method.rsplit("/", 1)[-1] in READ_METHODS else Scope.OPERATE


class CredentialsFileError(ValueError):
    """The tokens file does not parse; the message names the line, never its content."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """One set of accepted credentials: bearer tokens and certificate names, each with a scope."""

    tokens: tuple[tuple[bytes, Scope], ...] = ()
    names: dict[str, Scope] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print a token
        return f"Credentials(tokens=<{len(self.tokens)}>, names=<{len(self.names)}>)"

    def with_token(self, token: str, scope: Scope) -> Credentials:
        return Credentials((*self.tokens, (token.encode("utf-8"), scope)), self.names)

    def granted_scope(self, authorization: str | None, peer_names: Iterable[str] = ()) -> Scope | None:
        """The highest scope the call's credentials grant: its `authorization: Bearer <token>`
        header value and the names (SANs) of its verified client certificate. None: no grant."""
        granted = self._token_scope(authorization) if authorization is not None else None
        for name in peer_names:
            by_name = self.names.get(name)
            if by_name is not None and (granted is None or by_name > granted):
                granted = by_name
        return granted

    def _token_scope(self, authorization: str) -> Scope | None:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        given = credentials.strip().encode("utf-8")
        granted: Scope | None = None
        # Constant time and no early exit, so timing reveals neither how much of a guess matched
        # nor which of the tokens it was.
        for token, scope in self.tokens:
            if hmac.compare_digest(given, token) and (granted is None or scope > granted):
                granted = scope
        return granted


def parse_credentials(text: str) -> Credentials:
    """The credentials of a tokens file's text; CredentialsFileError names the first bad line."""
    tokens: dict[bytes, Scope] = {}
    names: dict[str, Scope] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2:
            raise CredentialsFileError(f"line {number}: expected `<scope> <token>` or `<scope> san:<name>`")
        scope = _SCOPES_BY_LABEL.get(fields[0])
        if scope is None:  # the field is not echoed: a token written first would end up in the log
            raise CredentialsFileError(f"line {number}: the scope must be `read` or `operate`")
        credential = fields[1]
        if credential.startswith(SAN_PREFIX):
            name = credential.removeprefix(SAN_PREFIX)
            if not name:
                raise CredentialsFileError(f"line {number}: `san:` needs a certificate name after it")
            _add(names, name, scope, number)
        else:
            _add(tokens, credential.encode("utf-8"), scope, number)
    if not tokens and not names:
        raise CredentialsFileError("no credentials in the file (every line blank or a comment)")
    return Credentials(tuple(tokens.items()), names)


def _add(found: dict[K, Scope], key: K, scope: Scope, number: int) -> None:
    if found.get(key, scope) is not scope:
        raise CredentialsFileError(f"line {number}: the same credential is listed under two scopes")
    found[key] = scope


class CredentialsFile:
    """The credentials in force: the tokens file's last good content, plus GRPC_AUTH_TOKEN as an
    `operate` token. `current` is what every call checks against; `watch` keeps it up to date."""

    def __init__(
        self, path: Path | None, operate_token: str | None = None, poll_seconds: float = 5.0
    ) -> None:
        if operate_token is not None and not operate_token:
            raise ValueError("the bearer token must not be empty")
        self._path = path
        self._operate_token = operate_token
        self._poll_seconds = poll_seconds
        self._digest = b""
        self.current = self._with_fixed(Credentials())
        if path is not None:
            self.current = self._with_fixed(
                parse_credentials(self._read_new() or "")
            )  # a bad file stops the start

    def __repr__(self) -> str:
        return f"CredentialsFile(path={self._path}, current={self.current!r})"

    def granted_scope(self, authorization: str | None, peer_names: Iterable[str] = ()) -> Scope | None:
        return self.current.granted_scope(authorization, peer_names)

    def reload(self) -> bool:
        """Re-read the file if its content changed. True when a new set took effect; a file that
        cannot be read or parsed keeps the last good set, and the log says why."""
        if self._path is None:
            return False
        try:
            text = self._read_new()
            if text is None:
                return False
            credentials = parse_credentials(text)
        except (OSError, UnicodeDecodeError, CredentialsFileError) as problem:
            reason = str(problem) if isinstance(problem, CredentialsFileError) else type(problem).__name__
            log.error(
                "auth tokens file not reloaded; keeping the last good credentials", extra={"reason": reason}
            )
            return False
        self.current = self._with_fixed(credentials)
        log.info(
            "auth tokens file reloaded",
            extra={"tokens": len(credentials.tokens), "certificate_names": len(credentials.names)},
        )
        return True

    async def watch(self) -> None:
        """Poll the file's content until cancelled."""
        while True:
            await asyncio.sleep(self._poll_seconds)
            await asyncio.to_thread(self.reload)

    def _read_new(self) -> str | None:
        """The file's text, or None when its content is the one read last."""
        assert self._path is not None
        data = self._path.read_bytes()  # follows the Secret's `..data` symlink to the new content
        digest = hashlib.sha256(data).digest()
        if digest == self._digest:
            return None
        self._digest = digest
        return data.decode("utf-8")

    def _with_fixed(self, credentials: Credentials) -> Credentials:
        if self._operate_token is None:
            return credentials
        return credentials.with_token(self._operate_token, Scope.OPERATE)
