"""The CLI's client commands against a real server: --json lines with proto field names (also when
stdout is not a terminal), exit codes (0/1/2/3/4/5/130), `CODE: message` errors, auth, sharded jobs,
--version and shell completion."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from devtools.harness import CLI, SandboxProcess, ServerProcess, free_port, start_server
from tests.e2e.cli_runner import client_env, json_lines, run_cli


def test_check_prints_one_json_line_with_proto_field_names(
    server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = server.seed_user(sandbox, passes=3, expired=1)
    done = run_cli("check", str(user_id), "--server", server.address, "--json")
    assert done.returncode == 0, done.stderr
    [result] = json_lines(done.stdout)
    assert result["user_id"] == user_id
    assert result["outcome"] == "OUTCOME_BUILT"
    assert result["counts"]["passes"] == 3 and result["counts"]["new_free"] == 0


def test_stdout_that_is_not_a_terminal_gets_json_without_the_flag(
    server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = server.seed_user(sandbox, passes=2, expired=1)
    assert run_cli("build", str(user_id), "--server", server.address).returncode == 0
    done = run_cli("get", str(user_id), "--view", "summary", "--server", server.address)
    assert done.returncode == 0, done.stderr
    [cache] = json_lines(done.stdout)
    assert cache["user_id"] == user_id and len(cache["passes"]) == 2 and len(cache["passes4"]) == 1
    assert "payload" not in cache["passes"][0] and cache["passes"][0]["payload_hash"]


def test_server_address_comes_from_the_environment(server: ServerProcess, sandbox: SandboxProcess) -> None:
    user_id = server.seed_user(sandbox)
    done = run_cli("timeout-check", str(user_id), "--max-age", "60", TICKET_CACHE_SERVER=server.address)
    assert done.returncode == 0, done.stderr
    assert json_lines(done.stdout)[0]["outcome"] == "OUTCOME_BUILT"


def test_rpc_error_prints_code_and_message_with_its_exit_code(server: ServerProcess) -> None:
    done = run_cli("get", "987654321", "--server", server.address)
    assert done.returncode == 3  # NOT_FOUND
    assert done.stderr.startswith("NOT_FOUND: ") and done.stdout == ""

    invalid = run_cli("timeout-check", "5", "--max-age", "999999999", "--server", server.address)
    assert invalid.returncode == 1
    assert invalid.stderr.startswith("INVALID_ARGUMENT: ") and "max_age_seconds" in invalid.stderr


def test_bytemark_down_is_unavailable_and_exits_5(server: ServerProcess, sandbox: SandboxProcess) -> None:
    user_id = server.seed_user(sandbox)
    # Every attempt, the client's own retries of UNAVAILABLE included, gets a body it cannot parse.
    sandbox.add_faults({"endpoint": "v1", "kind": "malformed_json", "times": 50, "user_id": user_id})
    done = run_cli("check", str(user_id), "--server", server.address)
    assert done.returncode == 5, done.stderr
    assert done.stderr.startswith("UNAVAILABLE: ")


def test_usage_errors_and_an_unreachable_server_exit_2(server: ServerProcess) -> None:
    assert run_cli("get", "0", "--server", server.address).returncode == 2
    assert run_cli("refresh-stale", "--shard", "2/2", "--server", server.address).returncode == 2
    unreachable = run_cli("check", "5", "--server", f"127.0.0.1:{free_port()}", "--timeout", "2")
    assert unreachable.returncode == 2
    assert "unreachable" in unreachable.stderr


def test_refresh_stale_streams_one_line_per_rider_and_exits_1_when_one_failed(
    server: ServerProcess, sandbox: SandboxProcess
) -> None:
    good, bad = server.seed_user(sandbox), server.seed_user(sandbox)
    sandbox.add_faults({"endpoint": "v1", "kind": "malformed_json", "times": 5, "user_id": bad})
    try:
        done = run_cli(
            "refresh-stale",
            "--user",
            str(good),
            str(bad),
            "--max-age",
            "60",
            "--json",
            "--server",
            server.address,
        )
    finally:
        sandbox.clear_faults()
    assert done.returncode == 1, done.stderr
    events = {event["user_id"]: event for event in json_lines(done.stdout)}
    assert events[good]["result"]["outcome"] == "OUTCOME_BUILT"
    assert events[bad]["error"]["code"] == "UNAVAILABLE"
    assert max(event["done"] for event in events.values()) == 2
    assert "failed 1 (UNAVAILABLE 1)" in done.stderr  # the summary line


def test_purge_orphans_dry_run_lists_without_removing(server: ServerProcess, sandbox: SandboxProcess) -> None:
    done = run_cli("purge-orphans", "--dry-run", "--json", "--server", server.address)
    assert done.returncode == 0, done.stderr
    [response] = json_lines(done.stdout)
    assert response["dry_run"] is True and isinstance(response["removed_user_ids"], list)


def test_purge_orphans_says_how_many_sync_statuses_of_riders_without_a_token_it_would_remove(
    server: ServerProcess,
) -> None:
    server.query(  # as a version that kept statuses for any id once wrote
        "INSERT INTO bytemark_sync_status (user_id, state, last_attempt_at, consecutive_failures)"
        " VALUES (8950000001, 'AUTH_REQUIRED', 1700000000, 1)"
    )

    done = run_cli("purge-orphans", "--dry-run", "--json", "--server", server.address)

    assert done.returncode == 0, done.stderr
    [response] = json_lines(done.stdout)
    assert response["dry_run"] is True and response["removed_sync_statuses"] == 1


def test_ctrl_c_cancels_the_stream_says_how_far_and_exits_130(
    server: ServerProcess, sandbox: SandboxProcess
) -> None:
    users = [server.seed_user(sandbox) for _ in range(4)]
    # Every Bytemark call of these riders hangs until the server's per-attempt timeout.
    sandbox.add_faults(*({"endpoint": "v1", "kind": "timeout", "times": -1, "user_id": u} for u in users))
    try:
        proc = subprocess.Popen(
            [CLI, "refresh-stale", "--concurrency", "1", "--json", "--server", server.address, "--user"]
            + [str(u) for u in users],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=client_env(),
        )
        deadline = time.monotonic() + 60
        while not any(str(u) in sandbox.stats()["users"] for u in users) and time.monotonic() < deadline:
            time.sleep(0.1)  # until the run is under way on the server
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        sandbox.clear_faults()
    assert proc.returncode == 130, stderr
    assert "refresh-stale cancelled after" in stderr and "riders" in stderr
    assert "Traceback" not in stderr


@pytest.fixture(scope="module")
def auth_server(sandbox: SandboxProcess, work_dir: Path) -> Iterator[ServerProcess]:
    process = start_server(sandbox, work_dir, GRPC_AUTH_TOKEN="cli-test-token")
    yield process
    process.stop()


def test_bearer_token_from_flag_or_environment(auth_server: ServerProcess, sandbox: SandboxProcess) -> None:
    user_id = auth_server.seed_user(sandbox)
    refused = run_cli("check", str(user_id), "--server", auth_server.address)
    assert refused.returncode == 4 and refused.stderr.startswith("UNAUTHENTICATED: ")
    assert "cli-test-token" not in refused.stderr
    by_flag = run_cli("check", str(user_id), "--server", auth_server.address, "--token", "cli-test-token")
    assert by_flag.returncode == 0, by_flag.stderr
    by_env = run_cli("get", str(user_id), "--server", auth_server.address, GRPC_AUTH_TOKEN="cli-test-token")
    assert by_env.returncode == 0, by_env.stderr


def test_run_refresh_stale_in_process_takes_its_shard_from_job_completion_index(
    server: ServerProcess, sandbox: SandboxProcess
) -> None:
    users = [server.seed_user(sandbox) for _ in range(4)]
    env = {**server.env, "JOB_COMPLETION_INDEX": "1", "LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [CLI, "run", "refresh-stale", "--shard-count", "2", "--max-age", "60", "--json"],
        capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    events = json_lines(done.stdout)
    refreshed = {event["user_id"] for event in events}
    assert refreshed and all(user_id % 2 == 1 for user_id in refreshed)
    assert {u for u in users if u % 2 == 1} <= refreshed
    assert events[-1]["done"] == events[-1]["total"] == len(events)
    assert "refresh-stale: " in done.stderr  # the same summary line as the client command


def test_run_job_usage_errors_exit_2(server: ServerProcess) -> None:
    env = {**server.env, "JOB_COMPLETION_INDEX": "x"}
    done = subprocess.run(
        [CLI, "run", "refresh-stale", "--shard-count", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2 and "JOB_COMPLETION_INDEX" in done.stderr
    no_index = subprocess.run(
        [CLI, "run", "refresh-stale", "--shard-count", "2"],
        capture_output=True, text=True, timeout=60, env={**server.env},
    )  # fmt: skip
    assert no_index.returncode == 2 and "--shard-index" in no_index.stderr


def test_run_bootstrap_on_a_store_with_caches_skips(server: ServerProcess, sandbox: SandboxProcess) -> None:
    user_id = server.seed_user(sandbox)
    assert run_cli("check", str(user_id), "--server", server.address).returncode == 0
    done = subprocess.run(
        [CLI, "run", "bootstrap", "--json"], capture_output=True, text=True, timeout=120, env={**server.env}
    )
    assert done.returncode == 0, done.stderr
    [event] = json_lines(done.stdout)
    assert event["skipped_not_empty"] is True


def test_sync_status_of_a_rider_and_of_every_rider_in_a_state(
    server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = server.seed_user(sandbox)
    refresh = run_cli("refresh-stale", "--user", str(user_id), "--json", "--server", server.address)
    assert refresh.returncode == 0, refresh.stderr
    one = run_cli("sync-status", str(user_id), "--json", "--server", server.address)
    assert one.returncode == 0, one.stderr
    [status] = json_lines(one.stdout)
    assert status["user_id"] == user_id and status["state"] == "SYNC_STATE_OK"
    listed = run_cli("sync-status", "--state", "ok", "--json", "--server", server.address)
    assert listed.returncode == 0, listed.stderr
    assert user_id in {s["user_id"] for s in json_lines(listed.stdout)}
    assert run_cli("sync-status", "--server", server.address).returncode == 2  # a rider or a state
    assert run_cli("sync-status", "987654321", "--server", server.address).stderr.startswith("NOT_FOUND: ")


def wait_until_connected(proc: subprocess.Popen[str], server: ServerProcess) -> None:
    """Until the CLI holds a connection to the server, plus a moment for its WatchChanges call to
    reach the server, which answers it with the feed's head at once."""
    port = int(server.address.rsplit(":", 1)[1])
    deadline = time.monotonic() + 60
    while not any(
        c.status == psutil.CONN_ESTABLISHED and c.raddr and c.raddr.port == port
        for c in psutil.Process(proc.pid).net_connections("tcp")
    ):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the watch never connected"
        time.sleep(0.05)
    time.sleep(2)


def test_watch_prints_changes_as_json_lines_and_ctrl_c_names_the_cursor_to_resume(
    server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = server.seed_user(sandbox, passes=2, expired=1)
    proc = subprocess.Popen(
        [CLI, "watch", "--user", str(user_id), "--json", "--server", server.address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=client_env(),
    )  # fmt: skip
    try:
        wait_until_connected(proc, server)  # the feed starts from now: let the watch subscribe first
        assert run_cli("build", str(user_id), "--server", server.address).returncode == 0
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["user_id"] == user_id and first["kind"] == "CHANGE_KIND_ADDED" and first["cursor"]
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "resume with --cursor " in stderr
