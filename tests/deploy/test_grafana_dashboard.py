"""The chart's Grafana dashboard: every panel's PromQL parses (promtool), names only series the
service exports, the Jobs push, the chart's rules record, or kube-state-metrics' CronJob status
(which the rules read too), and together the panels cover what an SRE looks at first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.adapters.driven.observability.test_prometheus_rules import (
    SERIES,
    exported_series,
    expr_without_strings,
    rules,
)
from tests.deploy.promtool import ROOT, promtool

DASHBOARD = ROOT / "deploy/helm/bytemark-ticket-cache/files/ticket-cache-dashboard.json"
#: Read by the chart's rules as well: the refresh CronJob's status, without a Pushgateway.
KUBE_STATE_METRICS = {"kube_cronjob_status_last_successful_time"}


def panels() -> list[dict[str, Any]]:
    return [panel for panel in json.loads(DASHBOARD.read_text())["panels"] if panel["type"] != "row"]


def expressions() -> dict[str, str]:
    return {
        f"{panel['title']} [{target['refId']}]": target["expr"]
        for panel in panels()
        for target in panel["targets"]
    }


def test_every_panel_queries_prometheus() -> None:
    assert len(panels()) >= 15
    for panel in panels():
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


def test_every_panel_expression_parses(tmp_path: Path) -> None:
    # promtool has no query-parse command: each expression becomes a recording rule it checks.
    synthetic = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:panel_{i}:expr", "expr": expr}
                    for i, expr in enumerate(expressions().values())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(synthetic))

    done = promtool("check", "rules", path)

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(expressions())} rules found" in done.stdout


def test_a_bad_expression_would_be_caught(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "d", "rules": [{"record": "a:b", "expr": "sum(rate(x[5m])"}]}]})
    )
    assert promtool("check", "rules", path).returncode != 0


def test_every_panel_names_only_series_that_exist() -> None:
    known = exported_series() | {rule["record"] for rule in rules() if "record" in rule} | KUBE_STATE_METRICS
    for title, expr in expressions().items():
        text = expr_without_strings(expr)
        named = set(SERIES.findall(text)) | {word for word in KUBE_STATE_METRICS if word in text}
        assert named, title
        assert sorted(named - known) == [], title


def test_the_panels_cover_freshness_sync_states_bytemark_bulk_runs_outbox_feed_and_grpc() -> None:
    everything = " ".join(expressions().values())
    for series in (
        "ticket_cache_store_oldest_cache_age_seconds",
        "ticket_cache_store_stale_riders",
        "ticket_cache_sync_riders",
        "bytemark_request_duration_seconds_count",
        "bytemark_request_errors_total",
        "bytemark_request_duration_seconds_bucket",
        "ticket_cache_bulk_users_total",
        "ticket_cache_job_riders_done",
        "ticket_cache_bulk_skipped_total",
        "ticket_cache_job_riders_skipped",
        "ticket_cache_outbox_pending_records",
        "ticket_cache_change_feed_subscribers",
        "ticket_cache_outbox_oldest_pending_age_seconds",
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
    ):
        assert series in everything, series
