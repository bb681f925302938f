"""The change feed on a real FerretDB (and MongoDB when MONGODB_URL is set), through motor and
PyMongo's async client: batches appended by concurrent relays get gapless positions in order,
a redelivered batch is ignored, readers page and filter without losing their place, the sweep
turns old cursors into CursorExpired, and a cache write or delete reaches the feed through the
outbox exactly once.

FerretDB v1 differences this relies on, each exercised here: a unique secondary index is
enforced (the redelivery test), a unique `_id` insert is atomic (the concurrent appenders), the
duplicate-key error does not name the index that refused (so the adapter looks the record id
up), and sort and `$lte` on a string `_id` follow string order (ids are zero-padded)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymongo.errors import DuplicateKeyError

from adapters.driven.storage.mongo.change_feed import BATCH_SCALE, MongoChangeFeed
from adapters.driven.storage.mongo.database import CLIENT_FACTORIES, MongoDatabase
from application.change_feed import FeedEvent
from application.errors import CacheNotStorable, CursorExpired, WriteConflict
from application.outbox import free_ticket_reward_record, new_record_id
from application.relay import OutboxRelay
from domain.changes import ChangeKind, PassChange, cache_changes
from domain.model import CachedPass, PassList, TicketCache
from tests.contract.cache_fixtures import MONGO_CLIENTS, MongoBackend, open_backend
from tests.unit.fakes import FakeRefreshLog, FakeTokenStore

MONGO_KINDS = [f"ferretdb-{client}" for client in MONGO_CLIENTS] + (
    [f"mongodb-{client}" for client in MONGO_CLIENTS] if os.environ.get("MONGODB_URL") else []
)
NOW = 1_700_000_000
FEED = "bytemarkticketschanges"


SERVER_URLS: dict[str, str] = {}  # backend name -> its server's URL, for a second client


@pytest.fixture(params=MONGO_KINDS)
async def mongo(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MongoBackend]:
    server_url = os.environ.get("MONGODB_URL", "")
    if request.param.startswith("ferretdb"):
        server_url = request.getfixturevalue("ferretdb_server").url("admin")
    SERVER_URLS[request.param] = server_url
    async with open_backend(request.param, tmp_path, server_url) as opened:
        assert isinstance(opened, MongoBackend)
        try:
            yield opened
        finally:
            for name in (FEED, f"{FEED}_swept", "bytemarkticketscaches_locks"):
                await opened.db.collection(name).drop()


async def feed_on(backend: MongoBackend) -> MongoChangeFeed:
    feed = backend.change_feed()
    await feed.create_schema()
    return feed


async def second_process(backend: MongoBackend) -> MongoDatabase:
    """Another client on the same database, as a second server process would have."""
    other = MongoDatabase(
        SERVER_URLS[backend.name],
        database_name=backend.db.database_name,
        client_factory=CLIENT_FACTORIES[backend.name.split("-")[1]],
    )
    await other.connect()
    return other


def changes(user_id: int, count: int, kind: ChangeKind = ChangeKind.ADDED, at: int = NOW) -> list[PassChange]:
    return [
        PassChange(user_id, PassList.PASSES, f"u{user_id}-p{i}", kind, False, f"h{i}", at)
        for i in range(count)
    ]


async def read_all(
    feed: MongoChangeFeed, after: int = 0, users: frozenset[int] = frozenset()
) -> list[FeedEvent]:
    events: list[FeedEvent] = []
    while True:
        page = await feed.read_after(after, 7, users)
        events += page.events
        if page.position == after:
            return events
        after = page.position


async def test_concurrent_appenders_in_two_processes_get_gapless_positions_and_keep_each_users_order(
    mongo: MongoBackend,
) -> None:
    other_db = await second_process(mongo)
    try:
        feeds = [await feed_on(mongo), mongo.change_feed(other_db)]

        async def one_user(feed: MongoChangeFeed, user_id: int) -> None:
            for write in range(4):  # one relay delivers a user's records in write order
                await feed.append(new_record_id(), user_id, changes(user_id, 2, at=NOW + write))

        await asyncio.gather(*(one_user(feeds[u % 2], u) for u in range(1, 13)))
        batches = await mongo.db.collection(FEED).find({}, {"_id": 1}).sort("_id", 1).to_list(None)
        events = await read_all(feeds[0])
    finally:
        await other_db.close()

    assert [int(b["_id"]) for b in batches] == list(range(1, 49))  # 12 users x 4 writes, no gap
    assert len(events) == 96
    positions = [e.position for e in events]
    assert positions == sorted(positions) and len(set(positions)) == 96
    for user_id in range(1, 13):
        assert [e.change.changed_at for e in events if e.change.user_id == user_id] == [
            NOW + w for w in range(4) for _ in range(2)
        ]
    assert await feeds[0].head() == 49 * BATCH_SCALE


async def test_a_batch_delivered_again_by_either_process_is_stored_once(mongo: MongoBackend) -> None:
    other_db = await second_process(mongo)
    try:
        feed, other = await feed_on(mongo), mongo.change_feed(other_db)
        record_id = new_record_id()
        await feed.append(record_id, 5, changes(5, 3))
        await other.append(record_id, 5, changes(5, 3))  # another relay, positions not yet known to it
        await feed.append(record_id, 5, changes(5, 3))
        await feed.append(new_record_id(), 6, changes(6, 1))
    finally:
        await other_db.close()

    events = await read_all(feed)
    assert [(e.change.user_id, e.change.pass_uuid) for e in events] == [
        (5, "u5-p0"),
        (5, "u5-p1"),
        (5, "u5-p2"),
        (6, "u6-p0"),
    ]
    # FerretDB v1 enforces the unique secondary index, whatever `_id` the second insert has
    with pytest.raises(DuplicateKeyError):
        await mongo.db.collection(FEED).insert_one({"_id": "x", "record_id": record_id})


async def test_appends_queued_together_pass_a_taken_position_and_a_redelivery_and_stay_gapless(
    mongo: MongoBackend,
) -> None:
    other_db = await second_process(mongo)
    try:
        feed, other = await feed_on(mongo), mongo.change_feed(other_db)
        await feed.append(new_record_id(), 1, changes(1, 1))  # `feed` knows position 1 as the newest
        redelivered = new_record_id()
        await other.append(redelivered, 2, changes(2, 1))  # positions 2 and 3, unknown to `feed`
        await other.append(new_record_id(), 3, changes(3, 1))

        # queued while none is on the wire: sent as one insert, which starts at the taken
        # position 2 and, retried after the newest, meets the redelivery mid-way
        await asyncio.gather(
            feed.append(new_record_id(), 4, changes(4, 1)),
            feed.append(redelivered, 2, changes(2, 1)),
            feed.append(new_record_id(), 5, changes(5, 1)),
            feed.append(new_record_id(), 6, changes(6, 1)),
        )
        batches = await mongo.db.collection(FEED).find({}, {"_id": 1}).sort("_id", 1).to_list(None)
    finally:
        await other_db.close()

    assert [int(b["_id"]) for b in batches] == list(range(1, 7))
    assert [e.change.user_id for e in await read_all(feed)] == [1, 2, 3, 4, 5, 6]
    assert await feed.head() == 7 * BATCH_SCALE


async def test_a_page_can_end_inside_a_batch_and_the_next_read_resumes_there(mongo: MongoBackend) -> None:
    feed = await feed_on(mongo)
    await feed.append(new_record_id(), 1, changes(1, 5))
    await feed.append(new_record_id(), 2, changes(2, 2))

    first = await feed.read_after(0, 3, frozenset())
    rest = await feed.read_after(first.position, 100, frozenset())
    idle = await feed.read_after(rest.position, 100, frozenset())

    assert [e.change.pass_uuid for e in first.events] == ["u1-p0", "u1-p1", "u1-p2"]
    assert first.position == first.events[-1].position
    assert [e.change.pass_uuid for e in rest.events] == ["u1-p3", "u1-p4", "u2-p0", "u2-p1"]
    assert rest.position == await feed.head()
    assert idle.events == () and idle.position == rest.position
    # resuming from any event's own cursor gives exactly what follows it
    resumed = await feed.read_after(rest.events[1].position, 100, frozenset())
    assert [e.change.pass_uuid for e in resumed.events] == ["u2-p0", "u2-p1"]


async def test_a_user_filter_returns_only_those_users_and_moves_past_the_others(mongo: MongoBackend) -> None:
    feed = await feed_on(mongo)
    for user_id in (1, 2, 3, 2):
        await feed.append(new_record_id(), user_id, changes(user_id, 2))

    page = await feed.read_after(0, 100, frozenset({2}))

    assert {e.change.user_id for e in page.events} == {2} and len(page.events) == 4
    assert page.position == await feed.head()


async def test_the_sweep_keeps_the_newest_batch_and_older_cursors_are_expired(mongo: MongoBackend) -> None:
    feed = await feed_on(mongo)
    for user_id in (1, 2, 3):
        await feed.append(new_record_id(), user_id, changes(user_id, 2))
    after_second = (await feed.read_after(0, 4, frozenset())).position

    removed = await feed.sweep(older_than=int(time.time()) + 60)  # everything is old enough

    assert removed == 2
    with pytest.raises(CursorExpired):
        await feed.read_after(0, 100, frozenset())
    with pytest.raises(CursorExpired):
        await feed.read_after(BATCH_SCALE + 1, 100, frozenset())  # inside the first batch
    assert [e.change.user_id for e in (await feed.read_after(after_second, 100, frozenset())).events] == [
        3,
        3,
    ]
    assert await feed.sweep(older_than=int(time.time()) + 60) == 0  # the newest stays: no reuse
    await feed.append(new_record_id(), 4, changes(4, 1))
    assert await feed.head() == 5 * BATCH_SCALE
    assert await feed.sweep(older_than=int(time.time()) - 3600) == 0  # nothing that old


def cache(user_id: int, *uuids_and_hashes: tuple[str, str]) -> TicketCache:
    passes = tuple(CachedPass(uuid, NOW, "USABLE", 0, {"uuid": uuid}, h) for uuid, h in uuids_and_hashes)
    return TicketCache(user_id=user_id, timestamp=NOW, passes=passes)


async def test_cache_writes_and_a_delete_reach_the_feed_once_and_leave_the_node_shape(
    mongo: MongoBackend,
) -> None:
    feed = await feed_on(mongo)
    relay = OutboxRelay(mongo.outbox, mongo.ticket_log, FakeRefreshLog(), FakeTokenStore(), change_feed=feed)
    store, user = mongo.cache_store, 41
    built = cache(user, ("a", "1"), ("b", "1"))
    v1 = await store.save(built, None, (), cache_changes(user, None, built, NOW))
    changed = cache(user, ("a", "2"), ("c", "1"))
    await store.save(changed, v1.version, (), cache_changes(user, v1, changed, NOW + 1))
    # both writes pending at once: delivered in write order, as one relay after the second write would
    await relay.deliver_after_write(user, (), changed=True)

    document = await mongo.db.collection("bytemarkticketscaches").find_one({"user_id": user}, {"_id": 0})
    assert list(document) == ["user_id", "timestamp", "passes", "passes4", "version"]
    assert await store.delete(user, cache_changes(user, changed, None, NOW + 2))
    assert await store.get(user) is None
    tombstone = await mongo.db.collection("bytemarkticketscaches").find_one({"user_id": user})
    assert tombstone is not None and tombstone["passes"] == []  # until the relay has delivered
    await relay.deliver_after_write(user, (), changed=True)
    assert await mongo.db.collection("bytemarkticketscaches").find_one({"user_id": user}) is None
    await relay.deliver(await mongo.outbox.pending(100))  # a background pass finds nothing more

    seen = [(e.change.kind, e.change.pass_uuid, e.change.payload_hash) for e in await read_all(feed)]
    assert seen == [
        (ChangeKind.ADDED, "a", "1"),
        (ChangeKind.ADDED, "b", "1"),
        (ChangeKind.CHANGED, "a", "2"),
        (ChangeKind.ADDED, "c", "1"),
        (ChangeKind.REMOVED, "b", "1"),
        (ChangeKind.REMOVED, "a", "2"),
        (ChangeKind.REMOVED, "c", "1"),
    ]


async def test_a_write_racing_a_delete_keeps_the_feed_equal_to_the_store(mongo: MongoBackend) -> None:
    feed = await feed_on(mongo)
    relay = OutboxRelay(mongo.outbox, mongo.ticket_log, FakeRefreshLog(), FakeTokenStore(), change_feed=feed)
    store, user = mongo.cache_store, 42
    old = cache(user, ("a", "1"))
    v1 = await store.save(old, None, (), cache_changes(user, None, old, NOW))
    stale_removals = cache_changes(user, v1, None, NOW + 2)  # what the purge read before the write
    new = cache(user, ("a", "2"), ("b", "1"))
    await store.save(new, v1.version, (), cache_changes(user, v1, new, NOW + 1))

    await store.delete(user, stale_removals)  # removes what is stored now, not what was read
    await relay.deliver_after_write(user, (), changed=True)

    passes: dict[str, str] = {}
    for event in await read_all(feed):
        if event.change.kind is ChangeKind.REMOVED:
            assert passes.pop(event.change.pass_uuid) == event.change.payload_hash
        else:
            passes[event.change.pass_uuid] = event.change.payload_hash
    assert passes == {} and await store.get(user) is None


@pytest.mark.needs_atomic_conditional_update
async def test_marks_of_many_riders_at_once_keep_the_records_their_cache_writes_add_meanwhile(
    mongo: MongoBackend,
) -> None:
    store, outbox, riders = mongo.cache_store, mongo.outbox, range(60, 90)
    delivered, later = [], []
    for user in riders:
        first = await store.save(TicketCache(user, NOW), None)
        records = [free_ticket_reward_record(user, NOW), free_ticket_reward_record(user, NOW + 1)]
        await store.save(TicketCache(user, NOW + 1), first.version, records)
        delivered.append(records[0])
        later.append(records[1])

    async def write_again(user: int) -> None:  # a cache write racing the marks, on the same riders
        current = await store.get(user)
        assert current is not None
        record = free_ticket_reward_record(user, NOW + 2)
        await store.save(TicketCache(user, NOW + 2), current.version, [record])
        later.append(record)

    await asyncio.gather(
        *(outbox.mark_delivered([record]) for record in delivered), *(write_again(u) for u in riders[::3])
    )

    assert sorted(r.record_id for r in await outbox.pending(1000)) == sorted(r.record_id for r in later)
    await outbox.mark_delivered(later)
    assert await outbox.pending(1000) == []
    document = await mongo.db.collection("bytemarkticketscaches").find_one({"user_id": 61}, {"_id": 0})
    assert list(document) == ["user_id", "timestamp", "passes", "passes4", "version"]


async def test_new_caches_inserted_together_each_reach_the_feed_and_a_taken_or_refused_one_fails_alone(
    mongo: MongoBackend,
) -> None:
    feed = await feed_on(mongo)
    relay = OutboxRelay(mongo.outbox, mongo.ticket_log, FakeRefreshLog(), FakeTokenStore(), change_feed=feed)
    store, riders = mongo.cache_store, range(72, 80)
    existing = await store.save(cache(70, ("kept", "1")), None)
    refused = TicketCache(71, NOW, (CachedPass("bad", NOW, "USABLE", 0, {"zones": [[1], [2]]}, "h"),))

    def build(user: int) -> TicketCache:
        return cache(user, (f"u{user}", "1"))

    # saved concurrently: the inserts queue behind the first and go as one command
    results = await asyncio.gather(
        *(store.save(build(u), None, (), cache_changes(u, None, build(u), NOW)) for u in riders),
        store.save(build(70), None, (), cache_changes(70, None, build(70), NOW)),
        store.save(refused, None, (), cache_changes(71, None, refused, NOW)),
        return_exceptions=True,
    )
    for user in riders:
        await relay.deliver_after_write(user, (), changed=True)

    assert [await store.get(u) for u in riders] == results[:8]
    assert isinstance(results[8], WriteConflict) and await store.get(70) == existing
    if mongo.name.startswith("ferretdb"):  # FerretDB v1 cannot hold nested arrays
        assert isinstance(results[9], CacheNotStorable) and await store.get(71) is None
    assert [e.change.pass_uuid for e in await read_all(feed)] == [f"u{u}" for u in riders]


async def test_a_rebuild_over_a_pending_delete_follows_its_removals_and_is_kept(mongo: MongoBackend) -> None:
    feed = await feed_on(mongo)
    relay = OutboxRelay(mongo.outbox, mongo.ticket_log, FakeRefreshLog(), FakeTokenStore(), change_feed=feed)
    store, user = mongo.cache_store, 43
    old = cache(user, ("a", "1"))
    v1 = await store.save(old, None, (), cache_changes(user, None, old, NOW))
    await store.delete(user, cache_changes(user, v1, None, NOW + 1))  # the relay has not come by yet

    new = cache(user, ("b", "1"))
    rebuilt = await store.save(new, None, (), cache_changes(user, None, new, NOW + 2))
    with pytest.raises(WriteConflict):  # a writer holding the deleted cache's version
        await store.save(old, v1.version, (), ())
    await relay.deliver_after_write(user, (), changed=True)

    assert await store.get(user) == rebuilt
    seen = [(e.change.kind, e.change.pass_uuid) for e in await read_all(feed)]
    assert seen == [(ChangeKind.ADDED, "a"), (ChangeKind.REMOVED, "a"), (ChangeKind.ADDED, "b")]
