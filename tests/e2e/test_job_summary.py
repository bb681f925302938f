"""`run refresh-stale` / `run bootstrap` report every run: pushed to a real Pushgateway when
PUSHGATEWAY_URL is set (grouped by job and shard), and always as the final log line."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.harness import CLI, SandboxProcess, ServerProcess, start_server
from tests.e2e.pushgateway import pushed, running_pushgateway

REFRESH = "ticket_cache_refresh_stale"
SUMMARY_FIELDS = {
    "job", "shard", "shard_count", "riders_done", "riders_failed", "riders_skipped",
    "duration_seconds", "succeeded", "stopped",
}  # fmt: skip


@pytest.fixture(scope="module")
def pushgateway(work_dir: Path) -> Iterator[str]:
    with running_pushgateway(work_dir) as url:
        yield url


@pytest.fixture(scope="module")
def server(sandbox: SandboxProcess, work_dir: Path) -> Iterator[ServerProcess]:
    process = start_server(sandbox, work_dir, BYTEMARK_MAX_ATTEMPTS="1")
    yield process
    process.stop()


def run_job(server: ServerProcess, *args: str, **env: str) -> tuple[int, dict[str, object]]:
    """Exit code and the final log line (parsed) of one in-process run."""
    env = {**server.env, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO", **env}
    done = subprocess.run([CLI, "run", *args, "--json"], capture_output=True, text=True, timeout=180, env=env)
    last_line = done.stderr.strip().splitlines()[-1]
    return done.returncode, json.loads(last_line)


def test_a_refresh_run_pushes_its_summary_grouped_by_job_and_shard(
    server: ServerProcess, sandbox: SandboxProcess, pushgateway: str
) -> None:
    users = [server.seed_user(sandbox) for _ in range(4)]
    started = time.time()

    code, summary = run_job(
        server, "refresh-stale", "--shard-count", "2", JOB_COMPLETION_INDEX="1", PUSHGATEWAY_URL=pushgateway
    )

    assert code == 0
    series = pushed(pushgateway, REFRESH, "1")
    mine = sum(1 for user in users if user % 2 == 1)
    assert series["ticket_cache_job_riders_done"] >= mine  # earlier tests' riders of the shard too
    assert series["ticket_cache_job_riders_done"] == summary["riders_done"]
    assert series["ticket_cache_job_riders_failed"] == 0
    assert series["ticket_cache_job_last_run_succeeded"] == 1
    assert series["ticket_cache_job_riders_skipped{backoff}"] == 0
    assert started <= series["ticket_cache_job_last_success_timestamp_seconds"] <= time.time()
    assert series["ticket_cache_job_duration_seconds"] > 0
    assert pushed(pushgateway, REFRESH, "0") == {}  # the other shard has not run


def test_a_failed_run_keeps_the_last_success_and_leaves_other_shards_alone(
    server: ServerProcess, sandbox: SandboxProcess, pushgateway: str
) -> None:
    def shard(index: str, *args: str) -> tuple[int, dict[str, object]]:
        return run_job(
            server, "refresh-stale", "--shard-count", "2", *args,
            JOB_COMPLETION_INDEX=index, PUSHGATEWAY_URL=pushgateway,
        )  # fmt: skip

    shard("0")
    shard_one = pushed(pushgateway, REFRESH, "1")
    if not shard_one:  # this test alone: shard 1's first, successful run
        shard("1")
        shard_one = pushed(pushgateway, REFRESH, "1")
    failing = next(user for user in iter(lambda: server.seed_user(sandbox), None) if user % 2 == 1)
    sandbox.add_faults({"endpoint": "v1", "kind": "500", "times": -1, "user_id": failing})
    try:
        code, summary = shard("1", "--max-age", "1")
    finally:
        sandbox.clear_faults()

    assert code == 1 and summary["succeeded"] is False and summary["riders_failed"] == 1
    after = pushed(pushgateway, REFRESH, "1")
    assert after["ticket_cache_job_riders_failed"] == 1
    assert after["ticket_cache_job_last_run_succeeded"] == 0
    last_success = "ticket_cache_job_last_success_timestamp_seconds"
    assert after[last_success] == shard_one[last_success]  # pushadd: only the names sent are replaced
    assert pushed(pushgateway, REFRESH, "0")["ticket_cache_job_last_run_succeeded"] == 1


def test_bootstrap_pushes_under_its_own_job(server: ServerProcess, pushgateway: str) -> None:
    code, summary = run_job(server, "bootstrap", PUSHGATEWAY_URL=pushgateway)

    series = pushed(pushgateway, "ticket_cache_bootstrap", "0")
    assert code == 0 and summary["job"] == "bootstrap"
    assert series["ticket_cache_job_riders_skipped{store_not_empty}"] == 1  # earlier tests built caches
    assert series["ticket_cache_job_last_run_succeeded"] == 1


def test_without_a_pushgateway_the_final_log_line_is_the_summary(
    server: ServerProcess, sandbox: SandboxProcess
) -> None:
    server.seed_user(sandbox)

    code, summary = run_job(server, "refresh-stale")

    assert code == 0
    assert summary["msg"] == "run summary" and SUMMARY_FIELDS <= summary.keys()
    assert summary["job"] == "refresh_stale" and summary["succeeded"] is True
    assert summary["riders_done"] >= 1 and summary["riders_failed"] == 0
    assert isinstance(summary["last_success_at"], float)


def test_an_unreachable_pushgateway_does_not_fail_the_run(server: ServerProcess) -> None:
    code, summary = run_job(server, "refresh-stale", PUSHGATEWAY_URL="http://127.0.0.1:9")

    assert code == 0 and summary["succeeded"] is True
