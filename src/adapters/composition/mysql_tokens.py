"""Tokens, the refresh log and their delivered record ids on MySQL/MariaDB: what MYSQL_URL wires."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from dependency_injector import containers, providers

from adapters.composition.settings import Settings
from adapters.driven.storage.crypto.token_cipher import TokenCipher
from adapters.driven.storage.mysql.database import MysqlDatabase
from adapters.driven.storage.mysql.delivered_ids import MysqlDeliveredIds
from adapters.driven.storage.mysql.refresh_log import MysqlRefreshLog
from adapters.driven.storage.mysql.token_store import MysqlTokenStore
from application.errors import StoreUnavailable

log = logging.getLogger(__name__)


async def _mysql_database(settings: Settings) -> AsyncIterator[MysqlDatabase]:
    assert settings.mysql_url is not None
    db = MysqlDatabase(settings.mysql_url)
    try:
        await db.connect()
    except StoreUnavailable as exc:  # the pool is created on the next call instead
        log.warning("MySQL not reachable at start-up; will retry on use", extra={"reason": exc.reason})
    try:
        yield db
    finally:
        await db.close()


class MysqlTokens(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    cipher = providers.Dependency(instance_of=TokenCipher)

    database = providers.Resource(_mysql_database, settings)

    token_store = providers.Singleton(MysqlTokenStore, database, cipher)
    refresh_log = providers.Singleton(MysqlRefreshLog, database)
    delivered_ids = providers.Singleton(MysqlDeliveredIds, database)
