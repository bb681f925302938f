"""The production topology for E2E tests: caches and ticket log on a real FerretDB process, tokens
and the refresh log on MariaDB, and the real server process between them.

Each topology gets its own MariaDB database (the `test` database is shared with other suites that
drop its tables) and its own MongoDB database; both are dropped afterwards. Stored documents are
inspected with PyMongo's synchronous client, the way an operator would look at them.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncmy
import pymongo

from devtools.ferretdb import FerretDB
from devtools.harness import SandboxProcess, ServerProcess, start_server

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root"}
CACHES, LOGS = "bytemarkticketscaches", "bytemarkticketslogs"
#: Short enough that a test sees a dead FerretDB within seconds, not the driver's default 30 s.
MONGO_OPTIONS = {"serverSelectionTimeoutMS": "1500", "connectTimeoutMS": "1500"}


async def _mariadb(sql: str, params: tuple[Any, ...] | None = None, database: str | None = None) -> list[Any]:
    conn = await asyncmy.connect(**MARIADB, database=database, autocommit=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql, params)
            return list(await cur.fetchall())
    finally:
        conn.close()


def mariadb(sql: str, params: tuple[Any, ...] | None = None, database: str | None = None) -> list[Any]:
    """Run one statement as root, on a loop of its own thread: callable from sync fixtures and
    from async tests alike (blocking the test's loop briefly, as an operator's query would)."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, _mariadb(sql, params, database)).result()


@dataclass
class Topology:
    ferretdb: FerretDB
    sandbox: SandboxProcess
    work_dir: Path
    client: str  # MONGODB_CLIENT of the servers
    mysql_database: str = field(default_factory=lambda: f"e2e_mongo_{uuid.uuid4().hex[:10]}")
    mongo_database: str = field(default_factory=lambda: f"ticketcache_{uuid.uuid4().hex[:10]}")
    servers: list[ServerProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        mariadb(f"CREATE DATABASE {self.mysql_database}")
        self._mongo: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            self.ferretdb.url(self.mongo_database), serverSelectionTimeoutMS=5000
        )

    @property
    def env(self) -> dict[str, str]:
        return {
            "MYSQL_URL": f"mysql://root@127.0.0.1:3306/{self.mysql_database}?connect_timeout=3&query_timeout=10",
            "MONGODB_URL": self.ferretdb.url(self.mongo_database, **MONGO_OPTIONS),
            "MONGODB_CLIENT": self.client,
        }

    def start_server(self, **extra_env: str) -> ServerProcess:
        server = start_server(self.sandbox, self.work_dir, **{**self.env, **extra_env})
        self.servers.append(server)
        return server

    def seed_user(self, passes: int = 4, expired: int = 2) -> int:
        creds = self.sandbox.create_user(passes=passes, expired=expired)
        user_id = int(creds["user_id"])
        mariadb(
            "INSERT INTO bytemark_tokens (user_id, token, refresh_token, status, updated_at)"
            " VALUES (%s, %s, %s, 1, NOW())",
            (user_id, creds["access_token"], creds["refresh_token"]),
            self.mysql_database,
        )
        return user_id

    def forget_token(self, user_id: int) -> None:
        mariadb("DELETE FROM bytemark_tokens WHERE user_id = %s", (user_id,), self.mysql_database)

    def refresh_log_rows(self, user_id: int) -> list[Any]:
        return mariadb(
            "SELECT activity_type, status FROM bytemark_ticket_refresh_log WHERE user_id = %s",
            (user_id,),
            self.mysql_database,
        )

    def collection(self, name: str) -> Any:
        return self._mongo[self.mongo_database][name]

    def cache_document(self, user_id: int) -> dict[str, Any] | None:
        return self.collection(CACHES).find_one({"user_id": user_id})

    def log_documents(self, user_id: int) -> list[dict[str, Any]]:
        return list(self.collection(LOGS).find({"user_id": user_id}, {"_id": 0}))

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        try:
            if self.ferretdb.running:
                self._mongo.drop_database(self.mongo_database)
        finally:
            self._mongo.close()
            mariadb(f"DROP DATABASE IF EXISTS {self.mysql_database}")
