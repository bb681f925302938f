"""MONGODB_PROFILE resolved once into the Mongo adapters' strategies (see
adapters/driven/storage/mongo/capabilities.py): the container injects them."""

from __future__ import annotations

import logging

from adapters.composition.settings import Settings
from adapters.driven.storage.mongo.capabilities import resolve_capabilities
from adapters.driven.storage.mongo.database import MongoDatabase
from adapters.driven.storage.mongo.profiles import MongoStrategies, strategies_for

log = logging.getLogger(__name__)


async def mongo_strategies(db: MongoDatabase, settings: Settings) -> MongoStrategies:
    """`auto` asks buildInfo once (StoreUnavailable when the server is down: `serve` and
    `migrate` need it at start-up anyway); a named profile asks nothing."""
    capabilities = await resolve_capabilities(db, settings.mongodb_profile)
    log.info("MongoDB server profile", extra={"profile": capabilities.profile})
    return strategies_for(capabilities, db, settings.mongodb_cache_collection)
