"""The change feed on MongoDB / FerretDB: collection `bytemarkticketschanges`, one document per
cache write (a batch of its pass changes) whose `_id` is its position in the feed.

A cache write does not append to the feed itself: that would be a second document in the same
write, i.e. a multi-document transaction (MongoDB has them on replica sets, FerretDB v1 has
none). The single-document design needs none: the write carries its batch as an outbox record
inside the cache document (see cache_store.py), and the relay appends it right after the write
and in the background until it lands.

Positions are gapless and in append order. An appender inserts `_id = newest + 1`; an insert
that hits a taken `_id` means another appender took that position, so it re-reads the newest
and tries the next. An insert on a unique `_id` is atomic on FerretDB too, and `newest + 1` is
tried only once `newest` is stored, so a reader walking the feed `_id` by `_id` never passes a
position that is filled later (it still stops at the first one missing, as a safeguard). A
unique index on `record_id` turns a redelivered batch (a crash between append and mark, two
relays at once) into a failed insert: ignored. A relay goes through a user's pending records
in write order and moves on only once the previous one is stored (by it or by another relay),
so a user's later changes always get later positions. The batches a process's relays queue while
an insert is on the wire go as the next insert, at consecutive positions (FerretDB has a single
writer: one insert of many costs about one of one). It is ordered, so what it stores is a
prefix; a duplicate stops it, and the rest goes on after the newest (a taken position) or after
the prefix (a redelivery, not stored again). A group holds no two records of one user in flight.

A cursor position is `batch * 1,000,000 + changes of that batch already read` (one cache write
holds far fewer than a million passes), so a page can end inside a large batch.

`_id` is a zero-padded decimal string. Profile `mongodb` reads consecutive batches with one
range query on it; profile `ferretdb` with point lookups (FerretDB v1 scans for any filter but
equality on `_id`; see feed_reads.py). On FerretDB, scans remain for the newest position (when a
watch starts, after an append lost a race, and at least hourly), for the `record_id` check after
a failed insert, and for the hourly sweep.

Retention is an application sweep (FerretDB has no TTL indexes): it first records how far it
removes (an insert into `<collection>_swept`), then removes the batches stored before the
cutoff, always keeping the newest so that no position is ever handed out twice. A reader whose
next batch is missing at or below that mark gets CursorExpired.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from adapters.common.bounded_lru import BoundedLru
from adapters.driven.storage.group_commit import GroupCommit, IfCallerCancelled
from adapters.driven.storage.mongo.database import DUPLICATE_KEY, MongoDatabase
from adapters.driven.storage.mongo.feed_reads import FeedReads, RangeReads, batch_key
from adapters.driven.storage.outbox_codec import change_document, pass_change
from application.change_feed import FeedEvent, FeedPage
from application.errors import CursorExpired, StoreUnavailable
from domain.changes import PassChange

BATCH_SCALE = 1_000_000
_APPEND_GROUP = 256  # batches appended by one insert at most
_APPENDED_REMEMBERED = 50_000  # batches looked up at once while a reader catches up
# The newest position an appender remembers is trusted this long: positions after it were
# stored after it was learnt, and the sweep removes only batches a day old or more, so the
# remembered position + 1 is either free or taken, never swept and free again.
_NEWEST_TRUSTED_SECONDS = 3600.0


class MongoChangeFeed:
    def __init__(
        self, db: MongoDatabase, collection: str = "bytemarkticketschanges", *, reads: FeedReads | None = None
    ) -> None:
        """`reads`: profile `mongodb`'s range query by default; the composition root injects
        point lookups under profile `ferretdb`."""
        self._db = db
        self._reads: FeedReads = reads or RangeReads()
        self._collection_name = collection
        self._swept_name = f"{collection}_swept"
        self._newest: int | None = None
        self._newest_learnt_at = 0.0
        # this process's appends take positions one group at a time
        self._appends = GroupCommit(self._append_group, _APPEND_GROUP, IfCallerCancelled.SEND_ANYWAY)
        # record ids this process appended: its relay's redeliveries (a background pass reading a
        # record between its inline append and mark) need no query; the unique index stays the
        # authority, checked by a scan on FerretDB v1 (record_id is not `_id`)
        self._appended: BoundedLru[str, None] = BoundedLru(_APPENDED_REMEMBERED)

    async def create_schema(self) -> None:
        with self._db.errors_as_unavailable():
            await self._feed().create_index([("record_id", ASCENDING)], unique=True)

    # -- the relay's side ------------------------------------------------------------------------

    async def append(self, record_id: str, user_id: int, changes: Sequence[PassChange]) -> None:
        if not changes or record_id in self._appended:
            return
        batch_fields = {
            "record_id": record_id,
            "user_id": user_id,
            "changed_at": changes[0].changed_at,
            "changes": [change_document(change) for change in changes],
        }
        await self._appends.submit(_Append(record_id, batch_fields))

    async def _append_group(self, group: Sequence[_Append]) -> list[BaseException | None]:
        """One insert for the whole group at the next positions, in queue order: an insert stops
        at its first failure (FerretDB keeps `ordered` for inserts), so the documents stored are a
        prefix and the positions stay gapless; the rest go again after it."""
        failures: dict[str, BaseException | None] = {}
        remaining: list[_Append] = []
        for request in group:  # a record queued twice (inline and background relay) goes once
            if request.record_id not in failures and request.record_id not in self._appended:
                failures[request.record_id] = None
                remaining.append(request)
        feed = self._feed()
        with self._db.errors_as_unavailable():
            batch = await self._next_batch()
            while remaining:
                stored_at = time.time()
                documents = [
                    {"_id": batch_key(batch + offset), **request.fields, "stored_at": stored_at}
                    for offset, request in enumerate(remaining)
                ]
                try:
                    await feed.insert_many(documents, ordered=True)
                    stored, refused = len(documents), None
                except BulkWriteError as exc:
                    stored, refused = _stored_prefix(exc, len(documents))
                except PyMongoError:
                    if len(remaining) == 1:
                        raise
                    # unknown how far it got (a connection lost, a document too large): one at a time
                    for request in remaining:
                        failures[request.record_id] = await _failure_of(self._append_group([request]))
                    break
                for request in remaining[:stored]:
                    self._appended_now(request.record_id)
                if stored:
                    self._remember(batch + stored - 1)
                if stored == len(remaining):
                    break
                failing, remaining = remaining[stored], remaining[stored + 1 :]
                if refused is not None:  # not a taken position: it alone fails, the rest go on
                    failures[failing.record_id] = self._unavailable(refused)
                    batch += stored
                elif await feed.find_one({"record_id": failing.record_id}, {"_id": 1}) is not None:
                    self._appended_now(failing.record_id)  # appended before: a redelivery
                    batch += stored
                else:  # another appender took the position
                    remaining.insert(0, failing)
                    batch = await self._newest_batch() + 1
        return [failures.get(request.record_id) for request in group]

    def _unavailable(self, error: PyMongoError) -> BaseException:
        try:
            with self._db.errors_as_unavailable():
                raise error
        except StoreUnavailable as unavailable:
            return unavailable

    def _appended_now(self, record_id: str) -> None:
        self._appended.put(record_id, None)

    async def _next_batch(self) -> int:
        if self._newest is not None and self._newest_is_trusted():
            return self._newest + 1
        return await self._newest_batch() + 1

    async def _newest_batch(self) -> int:
        found = await self._feed().find({}, {"_id": 1}).sort("_id", DESCENDING).limit(1).to_list(1)
        newest = int(found[0]["_id"]) if found else 0
        self._remember(newest)
        return newest

    def _remember(self, batch: int) -> None:
        self._newest, self._newest_learnt_at = batch, time.monotonic()

    # -- the reader's side (ChangeFeedStore) -------------------------------------------------------

    async def head(self) -> int:
        with self._db.errors_as_unavailable():
            newest = await self._newest_batch()
        return _position(newest + 1, 0)  # what a watch "from now" reads next

    async def read_after(self, position: int, limit: int, user_ids: frozenset[int]) -> FeedPage:
        batch, skip = divmod(position, BATCH_SCALE)
        if batch == 0:
            batch, skip = 1, 0
        events: list[FeedEvent] = []
        first_lookup = True
        with self._db.errors_as_unavailable():
            while len(events) < limit:
                window = self._reads.window(first_lookup, limit)
                for document in await self._reads.batches(self._feed(), batch, window):
                    if document is None:
                        # the batch this cursor needs is gone, not merely not written yet
                        if (
                            first_lookup
                            and self._may_be_swept(batch)
                            and batch <= await self._swept_through()
                        ):
                            raise CursorExpired()
                        return FeedPage(tuple(events), _position(batch, skip))
                    first_lookup = False
                    if not user_ids or int(document["user_id"]) in user_ids:
                        stored = document["changes"]
                        for index in range(skip, len(stored)):
                            if len(events) == limit:
                                return FeedPage(tuple(events), _position(batch, index))
                            change = pass_change(
                                int(document["user_id"]), int(document["changed_at"]), stored[index]
                            )
                            events.append(FeedEvent(_position(batch, index + 1), change))
                    batch, skip = batch + 1, 0
        return FeedPage(tuple(events), _position(batch, skip))

    async def sweep(self, older_than: int) -> int:
        """Batches stored before `older_than` (epoch s), never the newest."""
        feed, swept = self._feed(), self._db.collection(self._swept_name)
        with self._db.errors_as_unavailable():
            newest = await self._newest_batch()
            old = (
                await feed.find({"stored_at": {"$lt": older_than}}, {"_id": 1})
                .sort("_id", DESCENDING)
                .to_list(1)
            )
            if not old or newest <= 1:
                return 0
            through = min(int(old[0]["_id"]), newest - 1)
            try:  # the mark first: a reader that finds a batch missing must know it was swept
                await swept.insert_one({"_id": batch_key(through), "at": time.time()})
            except DuplicateKeyError:
                pass  # another process swept as far
            removed = await feed.delete_many({"_id": {"$lte": batch_key(through)}})
            await swept.delete_many({"_id": {"$lt": batch_key(through)}})  # covered by this mark
        return int(removed.deleted_count)

    def _may_be_swept(self, batch: int) -> bool:
        """False for a batch after the newest this process learnt of lately: it was stored after
        that, too recently for the sweep (idle readers then need one lookup per poll, not two)."""
        return not (self._newest is not None and batch > self._newest and self._newest_is_trusted())

    def _newest_is_trusted(self) -> bool:
        return time.monotonic() - self._newest_learnt_at < _NEWEST_TRUSTED_SECONDS

    async def _swept_through(self) -> int:
        marks = (
            await self._db.collection(self._swept_name)
            .find({}, {"_id": 1})
            .sort("_id", DESCENDING)
            .to_list(1)
        )
        return int(marks[0]["_id"]) if marks else 0

    def _feed(self) -> Any:
        return self._db.collection(self._collection_name)


@dataclass(frozen=True, slots=True)
class _Append:
    record_id: str
    fields: dict[str, Any]


def _stored_prefix(error: BulkWriteError, sent: int) -> tuple[int, PyMongoError | None]:
    """How many documents of an ordered insert were stored, and the refusal that stopped it when
    it was not a duplicate key (a taken position, or a batch appended before)."""
    write_errors = error.details.get("writeErrors") or []
    if not write_errors:
        raise error
    first = min(write_errors, key=lambda write_error: int(write_error["index"]))
    stored = int(first["index"])
    if not 0 <= stored < sent:
        raise error
    return stored, None if first.get("code") == DUPLICATE_KEY else error


async def _failure_of(attempt: Awaitable[Sequence[BaseException | None]]) -> BaseException | None:
    try:
        return (await attempt)[0]
    except Exception as exc:
        return exc


def _position(batch: int, read: int) -> int:
    return batch * BATCH_SCALE + read
