"""Profile `ferretdb`: per-user write locks, because FerretDB v1's conditional update is not atomic.

FerretDB v1 runs `replace_one({user_id, version})` as a query, then an update by `_id`: twenty
writers holding the same version all "match". An insert into a unique `_id` is atomic there, so
around each compare-and-set on FerretDB a writer first inserts `{_id: user_id}` into a lock
collection and deletes it afterwards. A writer that finds the lock held waits for it (a holder
needs milliseconds); a lock left by a crash is broken once it is older than `stale_after`
seconds, so a killed pod delays its riders' next writers, never fails them. Profile `mongodb`
takes no lock (locks.NoLocks).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from adapters.driven.storage.mongo.database import MongoDatabase
from adapters.driven.storage.unawaited_work import in_background
from application.errors import WriteConflict


class WriteLocks:
    def __init__(self, db: MongoDatabase, collection: str, stale_after: float = 10.0) -> None:
        self._db = db
        self._collection_name = collection
        self._stale_after = stale_after

    @asynccontextmanager
    async def held(self, user_id: int, expected_version: int | None) -> AsyncIterator[None]:
        """Hold the user's lock for the block, waiting for a live holder; WriteConflict if it never frees."""
        locks = self._db.collection(self._collection_name)
        token = uuid.uuid4().hex
        give_up_at = time.monotonic() + self._stale_after + 2.0
        pause = 0.005
        while True:
            lock = {"_id": user_id, "token": token, "at": time.time()}
            taking = asyncio.ensure_future(locks.insert_one(lock))
            try:
                # Shielded: a caller cancelled while the insert is on the wire must not leave a
                # lock it never learnt it holds; the insert finishes and is undone at once.
                await asyncio.shield(taking)
                break
            except asyncio.CancelledError:
                taking.add_done_callback(lambda done: _release_if_taken(done, locks, user_id, token))
                raise
            except DuplicateKeyError:
                await self._break_if_stale(locks, user_id)
                if time.monotonic() >= give_up_at:
                    raise WriteConflict(user_id, expected_version) from None
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.2)
        try:
            yield
        finally:
            # A failed release only leaves a lock that turns stale; the write's outcome stands.
            # Shielded: a caller cancelled mid-write (deadline, disconnect) still releases.
            await asyncio.shield(_release(locks, user_id, token))

    @asynccontextmanager
    async def held_many(self, user_ids: Sequence[int]) -> AsyncIterator[set[int]]:
        """Take the free locks of many users in one insert (no waiting): yields the users taken,
        released in one delete. A caller does the others' work under `held` instead."""
        locks = self._db.collection(self._collection_name)
        token = uuid.uuid4().hex
        at = time.time()
        wanted = list(dict.fromkeys(user_ids))
        documents = [{"_id": user_id, "token": token, "at": at} for user_id in wanted]
        taking = asyncio.ensure_future(locks.insert_many(documents, ordered=False))
        try:
            await asyncio.shield(taking)  # as in `held`: a cancelled caller still releases what it took
            taken = set(wanted)
        except asyncio.CancelledError:
            taking.add_done_callback(lambda _: in_background(_release_many(locks, wanted, token)))
            raise
        except BulkWriteError as exc:  # the others are held (or could not be taken): not ours
            refused = {int(error["index"]) for error in exc.details.get("writeErrors") or []}
            taken = {user_id for index, user_id in enumerate(wanted) if index not in refused}
        try:
            yield taken
        finally:
            if taken:
                await asyncio.shield(_release_many(locks, sorted(taken), token))

    async def _break_if_stale(self, locks: Any, user_id: int) -> None:
        held = await locks.find_one({"_id": user_id})
        if held is not None and time.time() - float(held.get("at", 0)) > self._stale_after:
            await locks.delete_one({"_id": user_id, "token": held.get("token")})


def _release_if_taken(insert: asyncio.Future[Any], locks: Any, user_id: int, token: str) -> None:
    if not insert.cancelled() and insert.exception() is None:
        in_background(_release(locks, user_id, token))


async def _release_many(locks: Any, user_ids: Sequence[int], token: str) -> None:
    """One delete; the filter on `_id` scans, but the lock collection holds only the locks held."""
    with suppress(PyMongoError):
        await locks.delete_many({"_id": {"$in": list(user_ids)}, "token": token})


async def _release(locks: Any, user_id: int, token: str) -> None:
    with suppress(PyMongoError):
        await locks.delete_one({"_id": user_id, "token": token})
