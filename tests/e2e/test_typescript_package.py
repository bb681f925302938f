"""The Node client as a consumer gets it: `npm pack`, the tarball installed into a fresh project
(tests/e2e/ts_consumer), its call type-checked with `tsc --strict` and run against the real server
on both ports: gRPC with the package's client, Connect on HTTP_LISTEN with its generated service."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.harness import SandboxProcess, ServerProcess, free_port, start_server
from tests.e2e.node_suite import NODE_CLIENT

CONSUMER = Path(__file__).with_name("ts_consumer")


def npm(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["npm", *args, "--no-audit", "--no-fund", "--prefer-offline"],
        cwd=cwd, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`npm pack` (its prepack step builds dist/)."""
    out = tmp_path_factory.mktemp("npm-pack")
    npm("pack", "--pack-destination", str(out), cwd=NODE_CLIENT)
    (packed,) = out.glob("*.tgz")
    return packed


@pytest.fixture(scope="module")
def consumer(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh project: TypeScript and Node types (its package.json), the tarball, and the Connect
    packages main.ts imports itself (npm shares them with the tarball's own dependencies)."""
    project = tmp_path_factory.mktemp("consumer") / "project"
    shutil.copytree(CONSUMER, project)
    npm("install", str(tarball), "@connectrpc/connect@^2.2.0", "@connectrpc/connect-node@^2.2.0", cwd=project)
    return project


def tsc(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    tsc_bin = project / "node_modules" / ".bin" / "tsc"
    return subprocess.run([tsc_bin, *args], cwd=project, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def compiled(consumer: Path) -> subprocess.CompletedProcess[str]:
    """main.ts through the consumer's tsconfig (strict) into dist/."""
    return tsc(consumer, "-p", ".")


@pytest.fixture(scope="module")
def server(sandbox: SandboxProcess, work_dir: Path) -> Iterator[ServerProcess]:
    process = start_server(sandbox, work_dir, HTTP_LISTEN=f"127.0.0.1:{free_port()}")
    yield process
    process.stop()


def test_the_tarball_is_publishable_and_ships_only_the_build(tarball: Path) -> None:
    with tarfile.open(tarball) as packed:
        names = packed.getnames()
        manifest = json.load(packed.extractfile("package/package.json"))  # type: ignore[arg-type]
    assert "package/dist/index.d.ts" in names and "package/dist/index.js" in names
    assert not [name for name in names if name.startswith(("package/src/", "package/test"))]
    assert "private" not in manifest
    assert manifest["exports"]["."]["types"] == "./dist/index.d.ts"
    assert {"version", "license", "repository", "files", "types"} <= manifest.keys()


def test_a_call_type_checks_under_strict_and_a_wrong_one_does_not(
    consumer: Path, compiled: subprocess.CompletedProcess[str]
) -> None:
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr

    wrong = tsc(consumer, "--strict", "--noEmit", "--module", "NodeNext", "--target", "ES2022", "wrong.ts")
    assert wrong.returncode != 0
    assert "Type 'string' is not assignable to type 'bigint'" in wrong.stdout
    assert "'getTicketCaches' does not exist" in wrong.stdout


def test_the_consumer_calls_the_real_server_on_both_ports(
    consumer: Path, compiled: subprocess.CompletedProcess[str], server: ServerProcess, sandbox: SandboxProcess
) -> None:
    assert compiled.returncode == 0, compiled.stdout
    user_id = server.seed_user(sandbox, passes=3, expired=1)
    env = {
        **os.environ,
        "TICKET_CACHE_URL": f"http://{server.address}",
        "TICKET_CACHE_HTTP_URL": f"http://{server.env['HTTP_LISTEN']}",
        "TICKET_CACHE_USER": str(user_id),
    }
    done = subprocess.run(
        ["node", "dist/main.js"], cwd=consumer, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"outcome": "BUILT", "passes": 3, "missing": "NotFound"}
