"""What a MongoDB server (or the driver, before sending) refuses to store becomes a typed error
naming the user: the 16 MiB document limit, and values a server cannot hold (FerretDB v1 refuses
keys with '.' or a leading '$', nested arrays and Infinity). Nothing is written in either case.

The limit is checked here, on the encoded document, because neither side checks it exactly: the
driver lets a command through up to 16 KiB over it, and FerretDB v1 then stores the document."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import bson
from bson.errors import InvalidDocument
from bson.raw_bson import RawBSONDocument
from pymongo.errors import DocumentTooLarge, OperationFailure

from adapters.driven.storage.mongo.storable_bson import UnstorableValue
from application.errors import CacheNotStorable, CacheTooLarge

#: MongoDB's BSON document limit; FerretDB announces the same maxBsonObjectSize.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
_BAD_VALUE = 2  # FerretDB v1's code for a key or value it cannot store
_OBJECT_TOO_LARGE = 10334  # BSONObjectTooLarge, when the server, not the driver, sees the size
_REASON_CHARS = 300  # a refused value is quoted by the server; keep messages short


def encoded_within_limit(user_id: int, document: Mapping[str, Any]) -> RawBSONDocument:
    """`document` as BSON, to send as is (the driver does not encode it again); CacheTooLarge
    when it is over the limit. Call inside `refusals_as_errors` (encoding may refuse a key)."""
    encoded = bson.encode(document)
    if len(encoded) > MAX_DOCUMENT_BYTES:
        raise _too_large(user_id, len(encoded))
    return RawBSONDocument(encoded)


@contextmanager
def refusals_as_errors(
    user_id: int, size: Callable[[], int], on_refused: Callable[[str], None] = lambda reason: None
) -> Iterator[None]:
    """Map refusals inside the block to CacheTooLarge / CacheNotStorable, telling `on_refused` the
    reason ('too_large' or 'not_storable'). `size` measures what was sent (called only when too large)."""
    try:
        yield
    except CacheTooLarge:
        on_refused("too_large")
        raise
    except DocumentTooLarge as exc:
        on_refused("too_large")
        raise _too_large(user_id, size()) from exc
    except (InvalidDocument, UnstorableValue) as exc:
        on_refused("not_storable")
        raise _not_storable(user_id, str(exc)) from exc
    except OperationFailure as exc:
        if exc.code == _OBJECT_TOO_LARGE:
            on_refused("too_large")
            raise _too_large(user_id, size()) from exc
        if exc.code == _BAD_VALUE:
            on_refused("not_storable")
            details = exc.details or {}
            raise _not_storable(user_id, str(details.get("errmsg") or exc)) from exc
        raise


def _too_large(user_id: int, size: int) -> CacheTooLarge:
    return CacheTooLarge(user_id, size, MAX_DOCUMENT_BYTES)


def _not_storable(user_id: int, reason: str) -> CacheNotStorable:
    if len(reason) > _REASON_CHARS:
        reason = reason[:_REASON_CHARS] + "…"
    return CacheNotStorable(user_id, "MongoDB", reason)
