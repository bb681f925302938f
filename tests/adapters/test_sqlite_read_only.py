"""The embedded store on a read-only SQLite file: it opens, serves reads, and fails writes with
StoreUnavailable (it used to refuse to open at all, since switching to WAL is a write).

Root writes through any file mode, so when the tests run as root the check runs in a child
process that runs without CAP_DAC_OVERRIDE (the same way the E2E suite starts its server)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from adapters.driven.storage.sqlite.database import _is_read_only
from devtools.harness import held_to_file_modes

CHILD = """
import asyncio, json, sys
from adapters.driven.storage.sqlite.database import SqliteDatabase
from application.errors import StoreUnavailable

async def main() -> None:
    db = SqliteDatabase(sys.argv[1])
    await db.connect()
    report = {"rows": [list(r) for r in await db.fetchall("SELECT a FROM t")]}
    try:
        await db.execute("INSERT INTO t (a) VALUES (2)")
        report["write"] = "written"
    except StoreUnavailable as exc:
        report["write"] = str(exc)
    await db.close()
    print(json.dumps(report))

asyncio.run(main())
"""


def test_a_read_only_database_file_opens_serves_reads_and_refuses_writes(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    path = directory / "cache.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (a INTEGER)")
        db.execute("INSERT INTO t (a) VALUES (1)")
    db.close()
    path.chmod(0o444)
    directory.chmod(0o555)
    try:
        child = subprocess.run(
            held_to_file_modes([sys.executable, "-c", CHILD, str(path)]),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        directory.chmod(0o755)

    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    assert report["rows"] == [[1]]
    assert report["write"].startswith("SQLite unavailable: OperationalError: attempt to write a readonly")
    assert sorted(p.name for p in directory.iterdir()) == ["cache.sqlite3"]


def test_only_a_read_only_error_is_taken_for_a_read_only_file() -> None:
    read_only = sqlite3.OperationalError("attempt to write a readonly database")
    read_only.sqlite_errorcode = sqlite3.SQLITE_READONLY  # type: ignore[attr-defined]
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]

    assert _is_read_only(read_only)
    assert not _is_read_only(busy)
