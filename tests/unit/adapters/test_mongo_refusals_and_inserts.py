"""What the Mongo adapters make of a server's (or the driver's) refusals, with collections that
refuse on cue: each writer gets its own document's failure as a typed error naming the user."""

from __future__ import annotations

import asyncio
from typing import Any

import bson
import pytest
from bson.errors import InvalidDocument
from bson.raw_bson import RawBSONDocument
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DocumentTooLarge,
    DuplicateKeyError,
    OperationFailure,
)

from adapters.driven.storage.mongo.database import MongoDatabase
from adapters.driven.storage.mongo.ferretdb.grouped_inserts import GroupedInserts
from adapters.driven.storage.mongo.refusals import refusals_as_errors
from application.errors import CacheNotStorable, CacheTooLarge, StoreUnavailable


@pytest.mark.parametrize(
    ("refusal", "expected", "reason"),
    [
        (DocumentTooLarge("too big"), CacheTooLarge, "too_large"),
        (OperationFailure("BSONObjectTooLarge", 10334), CacheTooLarge, "too_large"),
        (InvalidDocument("key 'a.b' must not contain '.'"), CacheNotStorable, "not_storable"),
        (OperationFailure("bad", 2, {"errmsg": "x" * 500}), CacheNotStorable, "not_storable"),
    ],
    ids=["driver size check", "server size check", "driver key check", "server value check"],
)
def test_a_refusal_becomes_a_typed_error_naming_the_user_and_is_counted(
    refusal: Exception, expected: type[Exception], reason: str
) -> None:
    told: list[str] = []
    with pytest.raises(expected) as raised, refusals_as_errors(42, lambda: 17_000_000, told.append):
        raise refusal
    assert told == [reason] and "42" in str(raised.value)
    assert len(str(raised.value)) < 400  # a quoted value is cut short


def test_any_other_server_failure_is_left_to_the_store_unavailable_mapping() -> None:
    with pytest.raises(OperationFailure), refusals_as_errors(42, lambda: 0):
        raise OperationFailure("not primary", 10107)


class RefusingCollection:
    """insert_many answers with the scripted failure; insert_one refuses `refused` documents."""

    def __init__(self, many_fails_with: Exception | None, refused: frozenset[int] = frozenset()) -> None:
        self.many_fails_with = many_fails_with
        self.refused = refused
        self.stored: list[int] = []

    async def insert_many(self, documents: list[RawBSONDocument], ordered: bool) -> None:
        if self.many_fails_with is not None:
            raise self.many_fails_with
        self.stored += [document["n"] for document in documents]

    async def insert_one(self, document: RawBSONDocument) -> None:
        if document["n"] in self.refused:
            raise OperationFailure("cannot store", 2)
        self.stored.append(document["n"])


def documents(count: int) -> list[RawBSONDocument]:
    return [RawBSONDocument(bson.encode({"n": n})) for n in range(count)]


async def insert_all(collection: Any, count: int) -> list[BaseException | None]:
    inserts = GroupedInserts()
    return await asyncio.gather(
        *(inserts.insert(collection, document) for document in documents(count)), return_exceptions=True
    )


async def test_each_writer_of_a_group_gets_its_own_documents_refusal() -> None:
    refusal = BulkWriteError(
        {
            "writeErrors": [
                {"index": 1, "code": 11000, "errmsg": "dup"},
                {"index": 2, "code": 2, "errmsg": "bad"},
            ]
        }
    )
    results = await insert_all(RefusingCollection(refusal), 3)
    assert results[0] is None
    assert isinstance(results[1], DuplicateKeyError) and type(results[2]) is OperationFailure


async def test_a_group_the_server_refuses_whole_is_inserted_one_by_one() -> None:
    collection = RefusingCollection(OperationFailure("cannot store one of them", 2), refused=frozenset({1}))
    results = await insert_all(collection, 3)
    assert [result is None for result in results] == [True, False, True]
    assert sorted(collection.stored) == [0, 2]


async def test_a_bulk_failure_naming_no_document_fails_the_whole_group() -> None:
    results = await insert_all(RefusingCollection(BulkWriteError({"writeErrors": []})), 2)
    assert all(isinstance(result, BulkWriteError) for result in results)


async def test_a_database_used_before_connect_or_after_close_is_unavailable() -> None:
    db = MongoDatabase("mongodb://127.0.0.1:1/x?serverSelectionTimeoutMS=100")
    with pytest.raises(StoreUnavailable, match="not connected"):
        await db.ping()
    await db.connect()
    await db.connect()  # a second connect keeps the client
    with pytest.raises(StoreUnavailable):
        await db.ping()
    await db.close()
    with pytest.raises(StoreUnavailable, match="not connected"):
        db.collection("caches")


def test_driver_errors_become_store_unavailable_with_the_password_masked() -> None:
    db = MongoDatabase("mongodb://reader:s3cret@127.0.0.1:1/x")
    with pytest.raises(StoreUnavailable) as raised, db.errors_as_unavailable():
        raise AutoReconnect("auth failed for reader:s3cret@127.0.0.1")
    assert "s3cret" not in str(raised.value)
