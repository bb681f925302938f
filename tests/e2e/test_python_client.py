"""The Python client, built as a wheel and installed on its own into fresh virtualenvs at both ends of
its grpcio/protobuf/googleapis-common-protos ranges (the floors it declares, and the newest
releases), calls the real server: typed calls, a stream, errors, bearer auth, gRPC-level retries of
UNAVAILABLE and round_robin."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.harness import SandboxProcess, ServerProcess, free_port, start_server
from tests.e2e.client_wheel import (
    build_distributions,
    declared_floors,
    install_wheel,
    installed_versions,
)

SCENARIOS = Path(__file__).with_name("client_scenarios.py")


@pytest.fixture(scope="module")
def client_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheel, _sdist = build_distributions(tmp_path_factory.mktemp("client-dist"))
    return wheel


@pytest.fixture(scope="module", params=["lowest", "newest"])
def client_python(
    request: pytest.FixtureRequest, client_wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A virtualenv holding nothing but the client wheel, with grpcio/protobuf at one end of its ranges."""
    venv = tmp_path_factory.mktemp(f"client-venv-{request.param}") / "venv"
    python = install_wheel(client_wheel, venv, request.param)
    installed = installed_versions(python)
    print(f"client wheel, {request.param} end: {installed}")  # the versions tested, in the -s/-rA log
    assert len(declared_floors(client_wheel)) == 3, "grpcio, protobuf, googleapis-common-protos are ranges"
    if request.param == "lowest":  # the test really ran on the floors the wheel promises
        assert installed == declared_floors(client_wheel)
    return python


@pytest.fixture(scope="module")
def auth_server(sandbox: SandboxProcess, work_dir: Path) -> Iterator[ServerProcess]:
    process = start_server(sandbox, work_dir, GRPC_AUTH_TOKEN="client-test-token")
    yield process
    process.stop()


def scenario(python: Path, name: str, target: str, user_id: int, token: str = "") -> dict[str, object]:
    env = {**os.environ, "CLIENT_TOKEN": token, "PYTHONPATH": ""}
    done = subprocess.run(
        [python, SCENARIOS, name, target, str(user_id)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_the_sdist_builds_the_wheel_and_ships_the_stubs(client_wheel: Path) -> None:
    import zipfile

    names = zipfile.ZipFile(client_wheel).namelist()
    for shipped in ("ticket_cache_pb2.py", "ticket_cache_pb2.pyi", "ticket_cache_connect.py", "py.typed"):
        assert any(name.endswith(shipped) for name in names), shipped
    assert not any(name.startswith(("adapters/", "application/", "domain/")) for name in names)


def test_fresh_virtualenv_has_the_client_but_not_the_server(client_python: Path) -> None:
    probe = "import importlib.util as u; print(u.find_spec('ticket_cache_client') is not None, " + (
        "u.find_spec('adapters'))"
    )
    done = subprocess.run([client_python, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "None"]
    typed = list((client_python.parents[1] / "lib").glob("python3*/site-packages/bytemark/**/*_pb2.pyi"))
    assert typed, "the generated .pyi type stubs ship with the client package"


def test_typed_calls_stream_and_invalid_argument(
    client_python: Path, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = server.seed_user(sandbox, passes=3, expired=1)
    seen = scenario(client_python, "calls", server.address, user_id)
    assert seen["outcome"] == "OUTCOME_BUILT"
    assert seen["passes"] == 3
    assert seen["events"] == [[1, 1, "OUTCOME_FRESH"]]
    assert seen["invalid"]["code"] == "INVALID_ARGUMENT"  # type: ignore[index]
    assert "user_id" in seen["invalid"]["message"]  # type: ignore[index]


def test_bearer_token_is_sent_on_every_call(
    client_python: Path, auth_server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = auth_server.seed_user(sandbox)
    refused = scenario(client_python, "check", auth_server.address, user_id, token="wrong")
    assert refused["code"] == "UNAUTHENTICATED"
    seen = scenario(client_python, "calls", auth_server.address, user_id, token="client-test-token")
    assert seen["outcome"] == "OUTCOME_BUILT" and seen["events"] == [[1, 1, "OUTCOME_FRESH"]]


def test_unavailable_is_retried_by_the_channel_retry_policy(
    client_python: Path, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    # A malformed Bytemark body is not retried by the server: the call fails UNAVAILABLE once.
    user_id = server.seed_user(sandbox)
    sandbox.add_faults({"endpoint": "v1", "kind": "malformed_json", "times": 1, "user_id": user_id})
    assert scenario(client_python, "check-no-retry", server.address, user_id)["code"] == "UNAVAILABLE"

    sandbox.add_faults({"endpoint": "v1", "kind": "malformed_json", "times": 1, "user_id": user_id})
    assert scenario(client_python, "check", server.address, user_id) == {"outcome": "OUTCOME_BUILT"}


def test_errors_carry_reason_field_violations_and_retry_delay(
    client_python: Path, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = server.seed_user(sandbox)
    # Past the server's Retry-After bound (30 s): it gives up at once and passes the wait on.
    sandbox.add_faults({"endpoint": "v1", "kind": "429", "times": 1, "user_id": user_id, "retry_after": 120})

    seen = scenario(client_python, "errors", server.address, user_id)

    not_found, invalid, unavailable = seen["not_found"], seen["invalid"], seen["unavailable"]
    assert isinstance(not_found, dict) and isinstance(invalid, dict) and isinstance(unavailable, dict)
    assert (not_found["code"], not_found["reason"], not_found["domain"]) == (
        "NOT_FOUND",
        "CACHE_NOT_FOUND",
        "ticketcache.bytemark",
    )
    assert not_found["metadata"]["user_id"] == "999999999" and not_found["metadata"]["request_id"]
    assert (invalid["code"], invalid["reason"]) == ("INVALID_ARGUMENT", "INVALID_FIELD")
    assert invalid["field_violations"] == [["user_ids[1]", "must be a positive user id, got 0"]]
    assert (unavailable["code"], unavailable["reason"]) == ("UNAVAILABLE", "BYTEMARK_UNAVAILABLE")
    assert unavailable["retry_delay"] >= 120
    assert unavailable["metadata"]["endpoint"] == "GET /passes"


def handled_calls(metrics_address: str) -> float:
    with urllib.request.urlopen(f"http://{metrics_address}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("grpc_server_handled_total{") and "TicketCacheService" in line
    )


def test_round_robin_over_several_addresses_skips_a_dead_one(
    client_python: Path, server: ServerProcess, sandbox: SandboxProcess, work_dir: Path
) -> None:
    # Two replicas on one store, and an address where nothing listens.
    metrics = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    replicas = [
        start_server(sandbox, work_dir, SQLITE_PATH=str(server.sqlite_path), METRICS_LISTEN=address)
        for address in metrics
    ]
    try:
        target = "ipv4:" + ",".join([*(r.address for r in replicas), f"127.0.0.1:{free_port()}"])
        user_id = server.seed_user(sandbox)
        seen = scenario(client_python, "calls", target, user_id)
        assert seen["outcome"] == "OUTCOME_BUILT" and seen["events"] == [[1, 1, "OUTCOME_FRESH"]]
        assert all(handled_calls(address) >= 1 for address in metrics), "round_robin used both replicas"
    finally:
        for replica in replicas:
            replica.stop()
