"""How a new cache document is inserted, as the server profile needs it.

Profile `mongodb`: each insert is its own command (`DirectInserts`); MongoDB takes concurrent
writers. Profile `ferretdb`: inserts queued while one is on the wire go as one command
(ferretdb/grouped_inserts.py)."""

from __future__ import annotations

from typing import Any, Protocol

from bson.raw_bson import RawBSONDocument


class Inserts(Protocol):
    async def insert(self, collection: Any, document: RawBSONDocument) -> None:
        """Insert `document`; raises its own DuplicateKeyError or refusal, as insert_one does."""


class DirectInserts:
    """Profile `mongodb`: one insert_one per new cache."""

    async def insert(self, collection: Any, document: RawBSONDocument) -> None:
        await collection.insert_one(document)
