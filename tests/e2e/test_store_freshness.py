"""The staleness alert reads what `serve` exports: freshness read from the store on the gauge
period, growing while nothing refreshes, whichever process did the last refresh."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from devtools.harness import CLI, SandboxProcess, ServerProcess, free_port, start_server, wait_until
from tests.e2e.test_observability import scrape, value

MAX_AGE = 2  # CACHE_TIMEOUT_SECONDS: the max age the stale-riders gauge counts against
RULES = Path(__file__).resolve().parents[2] / "deploy/helm/bytemark-ticket-cache/files/ticket-cache-rules.yml"
OLDEST = "ticket_cache_store_oldest_cache_age_seconds"
STALE = "ticket_cache_store_stale_riders"


@pytest.fixture(scope="module")
def metrics_url() -> str:
    return f"http://127.0.0.1:{free_port()}/metrics"


@pytest.fixture(scope="module")
def server(sandbox: SandboxProcess, work_dir: Path, metrics_url: str) -> Iterator[ServerProcess]:
    process = start_server(
        sandbox,
        work_dir,
        METRICS_LISTEN=metrics_url.removeprefix("http://").removesuffix("/metrics"),
        SYNC_GAUGES_REFRESH_SECONDS="1",
        CACHE_TIMEOUT_SECONDS=str(MAX_AGE),
    )
    yield process
    process.stop()


def test_with_every_refresh_stopped_the_oldest_age_grows_past_the_max_age(
    server: ServerProcess, sandbox: SandboxProcess, metrics_url: str
) -> None:
    users = [server.seed_user(sandbox) for _ in range(2)]
    # Built by another process, as the CronJob's pods do: `serve` learns of it from the store alone.
    env = {**server.env, "LOG_LEVEL": "WARNING"}
    built = subprocess.run([CLI, "run", "bootstrap"], capture_output=True, text=True, timeout=120, env=env)
    assert built.returncode == 0, built.stderr
    built_at = time.time()

    def stale() -> float:
        return value(scrape(metrics_url), STALE, max_age_seconds=str(MAX_AGE))

    wait_until(lambda: stale() == len(users), 30, "every cache counted stale", server.proc, server.log_path)
    oldest = value(scrape(metrics_url), OLDEST)
    assert MAX_AGE < oldest <= time.time() - built_at + 2  # timestamps are whole seconds
    grown = lambda: value(scrape(metrics_url), OLDEST) >= oldest + 1  # noqa: E731
    wait_until(grown, 30, "the oldest age growing on", server.proc, server.log_path)


def test_a_refresh_makes_the_caches_fresh_again(
    server: ServerProcess, sandbox: SandboxProcess, metrics_url: str
) -> None:
    server.seed_user(sandbox)
    env = {**server.env, "LOG_LEVEL": "WARNING"}
    subprocess.run([CLI, "run", "refresh-stale", "--max-age", "0"], check=True, capture_output=True, env=env)

    wait_until(
        lambda: value(scrape(metrics_url), STALE, max_age_seconds=str(MAX_AGE)) == 0,
        30, "no stale rider after the refresh", server.proc, server.log_path,
    )  # fmt: skip


def test_the_staleness_alert_names_only_series_serve_exports(server: ServerProcess, metrics_url: str) -> None:
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    recorded = {rule["record"]: rule["expr"] for rule in rules if "record" in rule}
    [alert] = [rule["expr"] for rule in rules if rule.get("alert") == "TicketCachesStale"]

    wait_until(lambda: (OLDEST, ()) in scrape(metrics_url), 30, "the freshness gauges", server.proc)
    exported = {name for name, _ in scrape(metrics_url)}
    assert _raw_series(alert, recorded) <= exported
    assert {OLDEST, STALE, "ticket_cache_sync_riders"} <= _raw_series(alert, recorded)


def _raw_series(expr: str, recorded: dict[str, str]) -> set[str]:
    """The exported series an expression reads, through the recording rules it names."""
    names = set(re.findall(r"\b(?:ticket_cache|bytemark)[a-z0-9_:]*", re.sub(r'"[^"]*"', "", expr)))
    raw = set()
    for name in names:
        raw |= _raw_series(recorded[name], recorded) if name in recorded else {name}
    return raw
