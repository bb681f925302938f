"""TicketLog on MongoDB: one document per new or changed pass entry (TicketLogEntry.to_document)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from adapters.driven.storage.mongo.database import MongoDatabase
from adapters.driven.storage.mongo.storable_bson import bson_safe
from domain.model import TicketLogEntry


class MongoTicketLog:
    def __init__(self, db: MongoDatabase, collection: str = "bytemarkticketslogs") -> None:
        self._db = db
        self._collection_name = collection

    async def create_schema(self) -> None:
        with self._db.errors_as_unavailable():
            await self._collection().create_index([("user_id", ASCENDING)])

    async def append(self, entries: Sequence[TicketLogEntry]) -> None:
        if not entries:
            return  # insert_many refuses an empty list
        documents = [bson_safe(entry.to_document()) for entry in entries]
        with self._db.errors_as_unavailable():
            await self._collection().insert_many(documents, ordered=True)

    async def deliver(self, record_id: str, entry: TicketLogEntry) -> None:
        """The record id is the document's `_id`: a second delivery is a duplicate key, ignored."""
        document = bson_safe({"_id": ObjectId(record_id), **entry.to_document()})
        with self._db.errors_as_unavailable():
            try:
                await self._collection().insert_one(document)
            except DuplicateKeyError:
                pass

    async def entries_for_user(self, user_id: int) -> list[dict[str, Any]]:
        """The user's log documents without `_id`, oldest first (ObjectIds are generated in insertion
        order by one client; across clients the order is by second, then by client)."""
        cursor = self._collection().find({"user_id": user_id}, {"_id": 0}).sort("_id", ASCENDING)
        with self._db.errors_as_unavailable():
            documents: list[dict[str, Any]] = await cursor.to_list(None)
        return documents

    def _collection(self) -> Any:
        return self._db.collection(self._collection_name)
