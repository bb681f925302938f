"""The composition root picks one store family per role: MYSQL_URL tokens, MONGODB_URL caches,
one SQLite file for whatever is left."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from adapters.composition.container import build_container, migrate_stores, resolve
from adapters.composition.settings import load_settings
from application.errors import StoreUnavailable

MYSQL = {"MYSQL_URL": "mysql://user@127.0.0.1:1/tickets"}
MONGO = {"MONGODB_URL": "mongodb://127.0.0.1:1/tickets"}


async def test_sqlite_alone_keeps_every_store_in_one_file_and_shutdown_closes_it(tmp_path: Path) -> None:
    path = tmp_path / "one.sqlite3"
    container = build_container(load_settings({"SQLITE_PATH": str(path)}))
    try:
        migrated = await migrate_stores(container)
        tokens = await resolve(container.token_stores.token_store)
        token_delivered_ids = await resolve(container.token_stores.delivered_ids)
        cache_delivered_ids = await resolve(container.cache_stores.delivered_ids)
    finally:
        await container.shutdown_resources()  # type: ignore[misc]

    assert migrated == [
        "token_store: SqliteTokenStore",
        "refresh_log: SqliteRefreshLog",
        "cache_store: SqliteCacheStore",
        "ticket_log: SqliteTicketLog",
        "sync_state_store: SqliteSyncStateStore",
        "outbox: SqliteOutbox",
        "change_feed_store: SqliteChangeFeed",
    ]
    tables = {row[0] for row in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert {"bytemark_tickets_cache", "bytemark_outbox_delivered"} <= tables
    assert token_delivered_ids is cache_delivered_ids  # one file, so one delivered-ids table to sweep
    with pytest.raises(StoreUnavailable):
        await tokens.get_token(1)


@pytest.mark.parametrize(
    ("environ", "token_engine", "cache_engine"),
    [
        ({}, "Sqlite", "Sqlite"),
        (MYSQL, "Mysql", "Sqlite"),
        (MONGO, "Sqlite", "Mongo"),
        (MYSQL | MONGO, "Mysql", "Mongo"),
    ],
)
def test_each_url_moves_its_family_of_stores_and_leaves_the_rest_on_sqlite(
    environ: dict[str, str], token_engine: str, cache_engine: str
) -> None:
    container = build_container(load_settings(environ))
    for family, names, engine in (
        (container.token_stores, ("token_store", "refresh_log"), token_engine),
        (
            container.cache_stores,
            ("cache_store", "ticket_log", "sync_state_store", "outbox", "change_feed_store"),
            cache_engine,
        ),
    ):
        for name in names:
            assert getattr(family, name).last_overriding.cls.__name__.startswith(engine), name


@pytest.mark.parametrize("environ", [{}, MYSQL, MONGO, MYSQL | MONGO])
def test_every_store_the_root_reads_is_provided_by_the_chosen_families(environ: dict[str, str]) -> None:
    container = build_container(load_settings(environ))
    for family in (container.token_stores, container.cache_stores):
        unprovided = [name for name, dependency in family.providers.items() if not dependency.overridden]
        assert unprovided == [], f"a store family does not provide {unprovided}"
