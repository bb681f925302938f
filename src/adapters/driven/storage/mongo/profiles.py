"""The strategies each server profile gives the Mongo adapters, built once from its capabilities
(the composition root injects them; tests build them the same way)."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.driven.storage.mongo.capabilities import Capabilities
from adapters.driven.storage.mongo.database import MongoDatabase
from adapters.driven.storage.mongo.feed_reads import FeedReads, RangeReads
from adapters.driven.storage.mongo.ferretdb.grouped_inserts import GroupedInserts
from adapters.driven.storage.mongo.ferretdb.grouped_marks import GroupedMarks
from adapters.driven.storage.mongo.ferretdb.point_feed_reads import PointFeedReads
from adapters.driven.storage.mongo.ferretdb.sync_state_writes import ReplacesById
from adapters.driven.storage.mongo.ferretdb.write_lock import WriteLocks
from adapters.driven.storage.mongo.inserts import DirectInserts, Inserts
from adapters.driven.storage.mongo.locks import Locks, NoLocks
from adapters.driven.storage.mongo.marks import Marks, RiderByRiderMarks
from adapters.driven.storage.mongo.sync_state_store import SyncStateWrites, UpsertsByUserId

_UNBOUNDED = 100_000  # writes per bulk when the server sets no lower bound (the driver splits)


@dataclass(frozen=True, slots=True)
class MongoStrategies:
    capabilities: Capabilities
    locks: Locks  # around a cache document's compare-and-set (cache store and outbox share them)
    cache_inserts: Inserts
    marks: Marks
    feed_reads: FeedReads
    sync_state_writes: SyncStateWrites
    reads_by_id_first: bool  # a cache read asks for the remembered `_id` before user_id
    checks_unique_index: bool  # the unique user_id index is verified after it is created


def strategies_for(capabilities: Capabilities, db: MongoDatabase, cache_collection: str) -> MongoStrategies:
    """Each workaround only where its capability is missing: document locks where a conditional
    update is not atomic; `_id` lookups, grouped inserts and marks where other filters scan."""
    atomic = capabilities.atomic_conditional_update
    locks: Locks = NoLocks() if atomic else WriteLocks(db, f"{cache_collection}_locks")
    scans = not capabilities.indexed_filters
    per_bulk = capabilities.writes_per_bulk or _UNBOUNDED
    return MongoStrategies(
        capabilities,
        locks=locks,
        cache_inserts=GroupedInserts() if scans else DirectInserts(),
        marks=GroupedMarks(db, cache_collection, locks, per_bulk) if scans else RiderByRiderMarks(),
        feed_reads=PointFeedReads() if scans else RangeReads(),
        sync_state_writes=ReplacesById(per_bulk) if scans else UpsertsByUserId(),
        reads_by_id_first=scans,
        checks_unique_index=capabilities.unique_index_needs_check,
    )
