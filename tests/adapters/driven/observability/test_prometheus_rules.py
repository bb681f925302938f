"""The chart's files/ticket-cache-rules.yml names only metrics the server exports, the bulk Jobs
push, or the file itself records, so an alert can never watch a metric that does not exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

import adapters.driven.observability.metrics  # noqa: F401 - registers the service's metrics
import adapters.driving.grpc_api.metrics  # noqa: F401 - registers the gRPC server metrics
from adapters.driven.observability.pushgateway import summary_registry
from application.run_summary import RunSummary

CHART = Path(__file__).resolve().parents[4] / "deploy" / "helm" / "bytemark-ticket-cache"
RULES = CHART / "files" / "ticket-cache-rules.yml"
# Series names of this service: its own prefixes, and recording rules (level:metric:operation).
SERIES = re.compile(r"\b(?:ticket_cache|bytemark|grpc_server)[a-z0-9_:]*|\b[a-z_]+:[a-z0-9_:]+")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def exported_series() -> set[str]:
    """What `serve` exports, and what a successful `run` pushes to the Pushgateway."""
    names: set[str] = set()
    pushed = summary_registry(RunSummary("refresh_stale", 0, 0, done=1, failed=0, succeeded=True))
    for family in (*REGISTRY.collect(), *pushed.collect()):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
    return names


def expr_without_strings(expr: str) -> str:
    return re.sub(r'"[^"]*"', '""', expr)  # label values are not series names


def test_every_metric_the_rules_name_is_exported_or_recorded_here() -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    exported = exported_series()
    named = {name for rule in rules() for name in SERIES.findall(expr_without_strings(rule["expr"]))}
    assert named, "the rules name no metric at all"
    assert sorted(named - exported - recorded) == []


def test_the_rules_cover_stale_caches_auth_required_and_the_failing_ratio() -> None:
    everything = " ".join(rule["expr"] for rule in rules())
    for metric in (
        "ticket_cache_store_oldest_cache_age_seconds",
        "ticket_cache_store_stale_riders",
        "ticket_cache_sync_riders",
        "bytemark_tokens_expiring_riders",
        "ticket_cache_job_last_success_timestamp_seconds",
        "kube_cronjob_status_last_successful_time",
    ):
        assert metric in everything
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    assert {
        "TicketCachesStale",
        "TicketCacheAuthRequiredGrowing",
        "TicketCacheFailingRatioHigh",
        "TicketCacheRefreshJobNotSucceeding",
    } <= alerts


def test_every_alert_has_a_severity_and_a_summary() -> None:
    for rule in rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]


def test_a_misspelt_metric_would_be_caught() -> None:
    named = set(SERIES.findall("rate(ticket_cache_age_secnds_bucket[5m])"))
    assert named - exported_series() == {"ticket_cache_age_secnds_bucket"}
