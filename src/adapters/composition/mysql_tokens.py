"""Tokens, the refresh log and their delivered record ids on MySQL/MariaDB: what MYSQL_URL wires."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dependency_injector import containers, providers

from adapters.composition.connections import connected
from adapters.composition.settings import Settings
from adapters.driven.storage.crypto.token_cipher import TokenCipher
from adapters.driven.storage.mysql.database import MysqlDatabase
from adapters.driven.storage.mysql.delivered_ids import MysqlDeliveredIds
from adapters.driven.storage.mysql.refresh_log import MysqlRefreshLog
from adapters.driven.storage.mysql.token_store import MysqlTokenStore


async def _mysql_database(settings: Settings) -> AsyncIterator[MysqlDatabase]:
    assert settings.mysql_url is not None
    # the pool is created on the next call when MySQL is down at start-up
    async with connected(MysqlDatabase(settings.mysql_url), retry_unreachable="MySQL") as db:
        yield db


class MysqlTokens(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    cipher = providers.Dependency(instance_of=TokenCipher)

    database = providers.Resource(_mysql_database, settings)

    token_store = providers.Singleton(MysqlTokenStore, database, cipher)
    refresh_log = providers.Singleton(MysqlRefreshLog, database)
    delivered_ids = providers.Singleton(MysqlDeliveredIds, database)
