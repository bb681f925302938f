"""Profile `ferretdb`: new caches queued while an insert is on the wire go as one unordered
insert. FerretDB v1 has a single writer, so one insert of 60 documents costs about one of one;
each writer still gets its own document's duplicate or refusal. One instance per collection."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

from bson.raw_bson import RawBSONDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, PyMongoError

from adapters.driven.storage.group_commit import GroupCommit, IfCallerCancelled
from adapters.driven.storage.mongo.database import DUPLICATE_KEY

_INSERT_GROUP = 64  # new caches inserted by one command at most


class GroupedInserts:
    def __init__(self) -> None:
        self._collection: Any = None
        self._inserts = GroupCommit(self._insert_group, _INSERT_GROUP, IfCallerCancelled.SEND_ANYWAY)

    async def insert(self, collection: Any, document: RawBSONDocument) -> None:
        self._collection = collection  # one store's collection (re-fetched after a reconnect)
        await self._inserts.submit(document)

    async def _insert_group(self, documents: Sequence[RawBSONDocument]) -> list[BaseException | None]:
        """One unordered insert; each document's own failure (a duplicate user_id, a value the
        server refuses) goes to its writer, as `insert_one`'s would."""
        collection = self._collection
        if len(documents) == 1:
            await collection.insert_one(documents[0])
            return [None]
        try:
            await collection.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            return _insert_failures(exc, len(documents))
        except OperationFailure:  # the whole command refused (a document it cannot hold): one by one
            return [await _failure_of(collection.insert_one(document)) for document in documents]
        return [None] * len(documents)


def _insert_failures(error: BulkWriteError, sent: int) -> list[BaseException | None]:
    failures: list[BaseException | None] = [None] * sent
    write_errors = error.details.get("writeErrors") or []
    if not write_errors:
        raise error
    for write_error in write_errors:
        code, message = write_error.get("code"), str(write_error.get("errmsg") or error)
        failure_type = DuplicateKeyError if code == DUPLICATE_KEY else OperationFailure
        failures[int(write_error["index"])] = failure_type(message, code, write_error)
    return failures


async def _failure_of(insert: Awaitable[Any]) -> BaseException | None:
    try:
        await insert
    except PyMongoError as exc:
        return exc
    return None
