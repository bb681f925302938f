"""Store spans on the networked backends, from a refresh through the real container: MariaDB
statements (spans at the asyncmy adapter's boundary) and MongoDB commands (PyMongo's command
instrumentation, through motor and through AsyncMongoClient) beneath the caller's span, with
no token or secret in any span."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from opentelemetry import trace

from devtools.ferretdb import FerretDB
from tests.contract.cache_fixtures import MONGO_CLIENTS
from tests.contract.conftest import MYSQL_URL
from tests.traced_service import traced_service
from tests.traces import RecordedSpans


async def _refresh_spans(stores: dict[str, str], spans: RecordedSpans) -> list[dict[str, object]]:
    """The attributes of every span beneath a caller's span around one refresh and one read."""
    async with traced_service(stores) as service:
        with trace.get_tracer("test").start_as_current_span("caller"):
            await service.use_cases.build(1)
            await service.use_cases.get_cache(1)
        exported = spans.as_text()
        assert not [secret for secret in service.secrets() if secret in exported], "a secret in a span"
    return [dict(span.attributes or {}) for span in spans.beneath(spans.one("caller"))]


@pytest.mark.mysql
async def test_mariadb_statements_are_spans_beneath_the_caller(
    contract_mysql_database: str, tmp_path: Path, spans: RecordedSpans
) -> None:
    stores = {"MYSQL_URL": MYSQL_URL, "SQLITE_PATH": str(tmp_path / "cache.sqlite3")}

    beneath = await _refresh_spans(stores, spans)

    mysql = [attributes for attributes in beneath if attributes.get("db.system.name") == "mysql"]
    assert {"SELECT", "UPDATE"} <= {attributes["db.operation.name"] for attributes in mysql}
    assert "bytemark_tokens" in {attributes.get("db.collection.name") for attributes in mysql}


@pytest.mark.parametrize("client", MONGO_CLIENTS)
async def test_mongodb_commands_are_spans_beneath_the_caller(
    client: str, ferretdb_server: FerretDB, tmp_path: Path, spans: RecordedSpans
) -> None:
    database = f"traced_{uuid.uuid4().hex[:8]}"
    stores = {
        "MONGODB_URL": ferretdb_server.url(database),
        "MONGODB_CLIENT": client,
        "SQLITE_PATH": str(tmp_path / "cache.sqlite3"),
    }

    beneath = await _refresh_spans(stores, spans)

    mongo = [a for a in beneath if a.get("db.system") == "mongodb" or a.get("db.system.name") == "mongodb"]
    collections = {a.get("db.mongodb.collection") or a.get("db.collection.name") for a in mongo}
    assert "bytemarkticketscaches" in collections, collections
