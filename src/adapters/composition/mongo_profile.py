"""MONGODB_PROFILE resolved once into the Mongo adapters' strategies (see
adapters/driven/storage/mongo/capabilities.py): the container injects them."""

from __future__ import annotations

import logging

from adapters.composition.settings import Settings
from adapters.driven.storage.mongo.capabilities import FERRETDB, resolve_capabilities
from adapters.driven.storage.mongo.database import MongoDatabase
from adapters.driven.storage.mongo.profiles import MongoStrategies, strategies_for
from application.errors import StoreUnavailable

log = logging.getLogger(__name__)


async def mongo_strategies(db: MongoDatabase, settings: Settings) -> MongoStrategies:
    """`auto` asks buildInfo once; a server unreachable then gets FerretDB's strategies, which
    are correct on any server (MongoDB only pays for them), with a warning to set the profile."""
    try:
        capabilities = await resolve_capabilities(db, settings.mongodb_profile)
    except StoreUnavailable as exc:
        log.warning(
            "MongoDB unreachable while detecting its profile; using the ferretdb profile until restart"
            " (set MONGODB_PROFILE to skip detection)",
            extra={"reason": exc.reason},
        )
        capabilities = FERRETDB
    log.info("MongoDB server profile", extra={"profile": capabilities.profile})
    return strategies_for(capabilities, db, settings.mongodb_cache_collection)
