"""The cut-over dry run against real processes, on both cache stores (SQLite, and FerretDB as
production's MongoDB): caches written the way the Node job wrote them (no `version`, payloads as
Node's JSON.stringify printed them, hashes computed by Node itself over values taken from the Node
hash vectors) show no difference and no change; one pass changed at Bytemark shows as exactly that
change; and the stores hold the same bytes before and after, whichever way the dry run was asked
for (gRPC, the client CLI, `run refresh-stale`, and grpcurl as docs/dry-run.md shows it)."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pymongo
import pytest
from bson.raw_bson import RawBSONDocument

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.ferretdb import FerretDB
from devtools.harness import CLI, GRPCURL, SandboxProcess, ServerProcess, start_server, wait_until
from tests.e2e.cli_runner import json_lines, run_cli
from tests.e2e.mongo_topology import CACHES, MONGO_OPTIONS
from tests.e2e.test_grpcurl import json_objects

pytestmark = pytest.mark.timeout(600)

DOCS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "dry-run.md"
DOCS_ADDRESS, DOCS_USER = "localhost:50051", '"user_id": 1001'
VECTORS_PATH = Path(__file__).parents[1] / "unit" / "domain" / "hash_vectors" / "hash_vectors.json"
#: Node vectors whose values a Bytemark payload can carry on every store (numbers that JS prints
#: otherwise than Python: integral floats, negative zero, exponent forms).
VECTOR_WORDS = ("zero", "exponent", "fixed form", "fraction")
NODE_HASHES = """
const crypto = require('crypto');
let text = '';
process.stdin.on('data', (chunk) => { text += chunk; }).on('end', () => {
  const entries = JSON.parse(text);
  for (const entry of entries) {
    entry.payload_hash = crypto.createHash('md5').update(JSON.stringify(entry.payload), 'utf8').digest('hex');
  }
  process.stdout.write(JSON.stringify(entries));
});
"""
NODE_WROTE_AT = 1_600_000_000  # an old cache: the hourly job finds it stale


def node_vectors() -> list[dict[str, str]]:
    vectors = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))["vectors"]
    return [v for v in vectors if any(word in v["name"] for word in VECTOR_WORDS)]


def node_hashed(entries_json: str) -> str:
    """The entries as the Node job stored them: each payload through JSON.stringify, hashed by Node."""
    done = subprocess.run(
        ["node", "-e", NODE_HASHES],
        input=entries_json,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def test_the_node_hashing_here_reproduces_the_node_vectors() -> None:
    chosen = node_vectors()
    assert len(chosen) >= 5
    entries = json.dumps([{"payload": json.loads(v["input"])} for v in chosen])
    hashed = json.loads(node_hashed(entries))
    assert [entry["payload_hash"] for entry in hashed] == [v["md5"] for v in chosen]


class Store:
    """One server's cache store, read and rewritten the way an operator (or the Node job) would."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.mongo_url = server.env.get("MONGODB_URL")

    def nothing_pending(self) -> bool:
        if self.mongo_url is None:
            return self.server.query("SELECT COUNT(*) FROM bytemark_outbox")[0][0] == 0
        with pymongo.MongoClient(self.mongo_url) as client:
            db = client.get_default_database()
            return db[CACHES].count_documents({"_outbox_pending": True}) == 0

    def rewrite_as_node(self, user_id: int) -> None:
        """No version, an old timestamp, payloads as Node printed them and Node's hashes."""
        if self.mongo_url is None:
            passes, passes4 = self.server.query(
                "SELECT passes, passes4 FROM bytemark_tickets_cache WHERE user_id = ?", (user_id,)
            )[0]
            with sqlite3.connect(self.server.sqlite_path) as db:
                db.execute(
                    "UPDATE bytemark_tickets_cache SET version = 0, timestamp = ?, passes = ?, passes4 = ?"
                    " WHERE user_id = ?",
                    (NODE_WROTE_AT, node_hashed(passes), node_hashed(passes4), user_id),
                )
            return
        with pymongo.MongoClient(self.mongo_url) as client:
            caches = client.get_default_database()[CACHES]
            document = caches.find_one({"user_id": user_id})
            assert document is not None
            node_lists = {
                name: json.loads(node_hashed(json.dumps(document[name]))) for name in ("passes", "passes4")
            }
            caches.update_one(
                {"_id": document["_id"]},
                {"$set": {"timestamp": float(NODE_WROTE_AT), **node_lists}, "$unset": {"version": ""}},
            )

    def snapshot(self) -> list[Any]:
        """Every row of every table, or every document of every collection, as stored."""
        if self.mongo_url is None:
            with sqlite3.connect(self.server.sqlite_path) as db:
                return list(db.iterdump())
        with pymongo.MongoClient(self.mongo_url, document_class=RawBSONDocument) as client:
            db = client.get_default_database()
            return sorted(
                (name, sorted(document.raw for document in db[name].find({})))
                for name in db.list_collection_names()
            )


@pytest.fixture(scope="module", params=["sqlite", "ferretdb"])
def store(request: pytest.FixtureRequest, sandbox: SandboxProcess, work_dir: Path) -> Iterator[Store]:
    env: dict[str, str] = {}
    if request.param == "ferretdb":
        ferretdb: FerretDB = request.getfixturevalue("ferretdb_server")
        env["MONGODB_URL"] = ferretdb.url(f"e2e_dry_run_{uuid.uuid4().hex[:10]}", **MONGO_OPTIONS)
    server = start_server(sandbox, work_dir, **env)
    try:
        yield Store(server)
    finally:
        server.stop()
        if "MONGODB_URL" in env:
            with pymongo.MongoClient(env["MONGODB_URL"]) as client:
                client.drop_database(client.get_default_database().name)


def node_written_rider(store: Store, sandbox: SandboxProcess) -> tuple[int, list[dict[str, Any]]]:
    """A rider whose passes carry the Node vectors' values, cached as the Node job wrote it."""
    user_id = store.server.seed_user(sandbox, passes=3, expired=1)
    passes = sandbox.call("GET", f"/_sandbox/users/{user_id}")["passes"]
    for entry, vector in zip(passes, node_vectors(), strict=False):
        sandbox.call(
            "PATCH",
            f"/_sandbox/users/{user_id}/passes/{entry['uuid']}",
            {"node_vector": json.loads(vector["input"])},
        )
    built = run_cli("build", str(user_id), "--server", store.server.address, "--json")
    assert built.returncode == 0, built.stderr
    wait_until(
        store.nothing_pending,
        30,
        "the build's outbox records delivered",
        store.server.proc,
        store.server.log_path,
    )
    store.rewrite_as_node(user_id)
    return user_id, passes


def dry_check(store: Store, user_id: int) -> pb.RefreshResult:
    with grpc.insecure_channel(store.server.address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        response = stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id, dry_run=True))
    return response.result


def changes_of(report: dict[str, Any]) -> dict[str, list[str]]:
    return {
        kind: [ref["pass_uuid"] for ref in report.get(kind, [])] for kind in ("added", "changed", "removed")
    }


def test_a_node_cache_shows_no_difference_then_exactly_the_changed_pass_and_nothing_is_written(
    store: Store, sandbox: SandboxProcess
) -> None:
    user_id, passes = node_written_rider(store, sandbox)
    before = store.snapshot()

    unchanged = dry_check(store, user_id)
    assert unchanged.outcome == pb.OUTCOME_UNCHANGED, unchanged
    assert not unchanged.dry_run.hash_differences and not unchanged.dry_run.changed
    assert (
        not unchanged.dry_run.added and not unchanged.dry_run.removed and not unchanged.dry_run.token_rotated
    )

    edited = passes[0]["uuid"]
    sandbox.call("PATCH", f"/_sandbox/users/{user_id}/passes/{edited}", {"dry_run_probe": 1})

    changed = dry_check(store, user_id)
    assert [(ref.list, ref.pass_uuid) for ref in changed.dry_run.changed] == [("passes", edited)]
    assert not changed.dry_run.added and not changed.dry_run.removed and not changed.dry_run.hash_differences

    by_client = run_cli("check", str(user_id), "--dry-run", "--server", store.server.address, "--json")
    assert by_client.returncode == 0, by_client.stderr
    assert changes_of(json_lines(by_client.stdout)[0]["dry_run"]) == {
        "added": [],
        "changed": [edited],
        "removed": [],
    }

    stale = run_cli(
        "refresh-stale", "--dry-run", "--user", str(user_id), "--server", store.server.address, "--json"
    )
    assert stale.returncode == 0, stale.stderr
    event = json_lines(stale.stdout)[-1]
    assert changes_of(event["result"]["dry_run"])["changed"] == [edited]

    in_process = subprocess.run(
        [CLI, "run", "refresh-stale", "--dry-run", "--json"],
        capture_output=True, text=True, timeout=180, env={**store.server.env, "LOG_LEVEL": "WARNING"},
    )  # fmt: skip
    assert in_process.returncode == 0, in_process.stderr
    last = json_lines(in_process.stdout)[-1]
    totals = last["dry_run_totals"]
    assert totals["users_with_changes"] == 1
    assert totals["users_with_hash_differences"] == 0  # this service hashes as Node did

    assert store.snapshot() == before


def docs_grpcurl_block(address: str, user_id: int) -> str:
    """The grpcurl example of docs/dry-run.md, aimed at this test's server and rider."""
    section = DOCS_PAGE.read_text().split("## Try it with grpcurl", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    assert len(found) == 1, f"expected one ```sh block under 'Try it with grpcurl' in {DOCS_PAGE.name}"
    block = str(found[0])
    assert block.startswith("G=.venv/bin/grpcurl\n") and DOCS_ADDRESS in block and DOCS_USER in block, block
    return (
        block.replace("G=.venv/bin/grpcurl", f"G={GRPCURL}", 1)
        .replace(DOCS_ADDRESS, address)
        .replace(DOCS_USER, f'"user_id": {user_id}')
    )


def test_the_grpcurl_example_of_the_docs_reports_a_change_and_writes_nothing(
    store: Store, sandbox: SandboxProcess
) -> None:
    user_id, passes = node_written_rider(store, sandbox)
    sandbox.call("PATCH", f"/_sandbox/users/{user_id}/passes/{passes[1]['uuid']}", {"dry_run_probe": 2})
    before = store.snapshot()

    script = docs_grpcurl_block(store.server.address, user_id)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    result = json_objects(done.stdout)[0]["result"]
    assert result["outcome"] == "OUTCOME_UPDATED"
    assert result["dry_run"]["changed"] == [{"list": "passes", "pass_uuid": passes[1]["uuid"]}]
    assert store.snapshot() == before
