"""One MongoDB client per process. The client class is a constructor argument: motor's
AsyncIOMotorClient by default, PyMongo's AsyncMongoClient by configuration (MONGODB_CLIENT).
Adapters use only collection methods both share."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

from bson.codec_options import CodecOptions, TypeDecoder, TypeRegistry
from bson.int64 import Int64
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from application.errors import StoreUnavailable

#: Builds a client from the connection URL.
ClientFactory = Callable[[str], Any]

_STORE = "MongoDB"
#: The code of a write a unique index refused, as bulk write errors report it per document.
DUPLICATE_KEY = 11000

#: MONGODB_CLIENT values. Motor is end-of-life (critical fixes until 2027-05-14); PyMongo's async
#: client is its successor with the same collection methods.
CLIENT_FACTORIES: dict[str, ClientFactory] = {"motor": AsyncIOMotorClient, "pymongo": AsyncMongoClient}


class MongoDatabase:
    def __init__(
        self, url: str, database_name: str | None = None, client_factory: ClientFactory | None = None
    ) -> None:
        name = database_name or _database_in_url(url)
        if not name:
            raise ValueError("MongoDB database name: put it in the URL path or pass database_name")
        self.database_name = name
        self._url = url
        self._secrets = _url_secrets(url)
        self._client_factory: ClientFactory = client_factory or AsyncIOMotorClient
        self._client: Any = None
        self._database: Any = None
        self._collections: dict[str, Any] = {}
        self._is_ferretdb: bool | None = None

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def connect(self) -> None:
        """Create the client inside the running loop. Lazy like the drivers: no round trip here;
        call `ping()` to fail fast."""
        if self._client is not None:
            return
        with self.errors_as_unavailable():
            client = self._client_factory(self._url)
            self._database = client.get_database(self.database_name, codec_options=_CODEC_OPTIONS)
        self._client = client

    async def close(self) -> None:
        client, self._client, self._database = self._client, None, None
        self._is_ferretdb = None
        self._collections.clear()
        if client is not None:
            closed = client.close()  # a coroutine on PyMongo's async client, plain on motor
            if inspect.isawaitable(closed):
                await closed

    async def ping(self) -> None:
        with self.errors_as_unavailable():
            await self._connected_database().command("ping")

    async def is_ferretdb(self) -> bool:
        """True when buildInfo names FerretDB's version (FerretDB only); asked once per client."""
        if self._is_ferretdb is None:
            with self.errors_as_unavailable():
                info = await self._connected_database().command("buildInfo")
            self._is_ferretdb = "ferretdbVersion" in info
        return self._is_ferretdb

    def collection(self, name: str) -> Any:
        """The named collection (a motor or PyMongo async collection object)."""
        collection = self._collections.get(name)
        if collection is None:
            collection = self._connected_database().get_collection(name)
            self._collections[name] = collection
        return collection

    @contextmanager
    def errors_as_unavailable(self) -> Iterator[None]:
        """Driver errors (server selection, reconnect, auth, operation failures) become
        StoreUnavailable with the password masked. Callers catch DuplicateKeyError first."""
        try:
            yield
        except PyMongoError as exc:
            raise StoreUnavailable(_STORE, self.redact(f"{type(exc).__name__}: {exc}")) from exc

    def _connected_database(self) -> Any:
        if self._database is None:
            raise StoreUnavailable(_STORE, "database is not connected")
        return self._database


class _Int64AsInt(TypeDecoder):
    """BSON int64 reads as a plain int, as int32 does: the domain checks exact types, and a
    payload read back must equal the one that was stored."""

    bson_type = Int64

    def transform_bson(self, value: Any) -> Any:
        return int(value)


_CODEC_OPTIONS: CodecOptions[Any] = CodecOptions(type_registry=TypeRegistry([_Int64AsInt()]))


def _database_in_url(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def _url_secrets(url: str) -> tuple[str, ...]:
    """The password of the URL, as written and percent-decoded, longest first."""
    userinfo, at, _hosts = urlsplit(url).netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return ()
    password = userinfo.split(":", 1)[1]
    return tuple(sorted({s for s in (password, unquote(password)) if s}, key=len, reverse=True))
