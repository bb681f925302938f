"""The clients over TLS end to end: one real server with TLS, mutual TLS and a bearer token, called
through the CLI's --tls-ca/--tls-cert/--tls-key/--token, the Python client package and the Node
client. Certificates are made at test time (trustme, on the `cryptography` package)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.harness import SandboxProcess, ServerProcess, start_server
from tests.e2e.cli_runner import json_lines, run_cli
from tests.e2e.node_suite import assert_node_suite_passes
from tests.e2e.tls_files import write_tls_files
from ticket_cache_client import TicketCacheClient, TlsFiles, pb

TOKEN = "tls-e2e-token-5b2e9d"


@pytest.fixture(scope="module")
def pems(work_dir: Path) -> dict[str, Path]:
    return write_tls_files(work_dir, "client-tls", "tls-e2e-client@example.internal")


@pytest.fixture(scope="module")
def tls_server(sandbox: SandboxProcess, work_dir: Path, pems: dict[str, Path]) -> Iterator[ServerProcess]:
    process = start_server(
        sandbox,
        work_dir,
        GRPC_TLS_CERT_FILE=str(pems["server-cert"]),
        GRPC_TLS_KEY_FILE=str(pems["server-key"]),
        GRPC_TLS_CLIENT_CA_FILE=str(pems["client-ca"]),
        GRPC_AUTH_TOKEN=TOKEN,
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def rider(tls_server: ServerProcess, sandbox: SandboxProcess) -> int:
    return tls_server.seed_user(sandbox, passes=3, expired=1)


def cli_tls_flags(pems: dict[str, Path], ca: str = "ca") -> list[str]:
    client_pair = ["--tls-cert", str(pems["client-cert"]), "--tls-key", str(pems["client-key"])]
    return ["--tls-ca", str(pems[ca]), *client_pair]


def test_cli_check_then_get_over_mutual_tls_with_the_token(
    tls_server: ServerProcess, pems: dict[str, Path], rider: int
) -> None:
    flags = ["--server", tls_server.address, *cli_tls_flags(pems), "--token", TOKEN, "--json"]
    checked = run_cli("check", str(rider), *flags, timeout=60)
    got = run_cli("get", str(rider), "--view", "summary", *flags, timeout=60)
    anonymous = run_cli("get", str(rider), "--server", tls_server.address, *cli_tls_flags(pems), timeout=60)

    assert checked.returncode == 0, checked.stderr
    assert json_lines(checked.stdout)[0]["outcome"] in ("OUTCOME_BUILT", "OUTCOME_UNCHANGED")
    assert got.returncode == 0, got.stderr
    [cache] = json_lines(got.stdout)
    assert cache["user_id"] == rider and len(cache["passes"]) == 3
    assert anonymous.returncode == 4 and anonymous.stderr.startswith("UNAUTHENTICATED: ")


def test_cli_with_the_wrong_ca_exits_2_saying_the_certificate_was_not_trusted(
    tls_server: ServerProcess, pems: dict[str, Path]
) -> None:
    started = time.monotonic()
    wrong = run_cli(
        "check", "5", "--server", tls_server.address, *cli_tls_flags(pems, ca="wrong-ca"), "--token", TOKEN,
        timeout=60,
    )  # fmt: skip
    seconds = time.monotonic() - started

    assert wrong.returncode == 2 and wrong.stdout == ""
    [message] = wrong.stderr.splitlines()  # one line: no gRPC log lines, no traceback
    assert message.startswith(f"TLS: the certificate of {tls_server.address} is not trusted by the CA in ")
    assert str(pems["wrong-ca"]) in message and "CERTIFICATE_VERIFY_FAILED" in message
    assert seconds < 8  # a handshake that cannot succeed is reported at once, not after the 10 s wait


async def test_python_client_calls_over_mutual_tls_with_the_token(
    tls_server: ServerProcess, pems: dict[str, Path], rider: int
) -> None:
    tls = TlsFiles(ca=pems["ca"], cert=pems["client-cert"], key=pems["client-key"])
    async with TicketCacheClient(tls_server.address, token=TOKEN, tls=tls, timeout=20) as client:
        await client.wait_ready(10)
        result = await client.check(rider)
        cache = await client.get(rider, view=pb.CACHE_VIEW_SUMMARY)

    assert result.outcome in (pb.OUTCOME_BUILT, pb.OUTCOME_UNCHANGED)
    assert cache.user_id == rider and len(cache.passes) == 3


def test_node_client_calls_over_mutual_tls_with_the_token(
    tls_server: ServerProcess, pems: dict[str, Path], rider: int
) -> None:
    env = {
        "TICKET_CACHE_TLS_URL": f"https://{tls_server.address}",
        "TICKET_CACHE_TOKEN": TOKEN,
        "TICKET_CACHE_USER": str(rider),
        **{f"TICKET_CACHE_{name.upper().replace('-', '_')}": str(pems[name]) for name in pems},
    }
    assert_node_suite_passes("test-tls/", env, passes=2, timeout=60)
