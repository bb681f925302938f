"""Pushes a bulk run's summary to a Prometheus Pushgateway (PUSHGATEWAY_URL), grouped by job and
shard so the shards of one Indexed Job do not erase each other.

`pushadd_to_gateway` (HTTP POST) replaces only the metric names it sends: a failed run sends no
`ticket_cache_job_last_success_timestamp_seconds`, so the last success stays what the last
successful run pushed, and the staleness alert counts from it. `push_to_gateway` (PUT) would
drop it with the rest of the group."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import pushadd_to_gateway

from application.run_summary import RunSummary

log = logging.getLogger(__name__)

#: Every reason a summary may give, so each push replaces the last run's counts (0 when none).
SKIP_REASONS = ("auth_required", "backoff", "fresh", "no_valid_token", "store_not_empty")
JOB_PREFIX = "ticket_cache_"  # the Pushgateway `job` label: ticket_cache_refresh_stale, ...


def summary_registry(summary: RunSummary) -> CollectorRegistry:
    """The summary as the gauges one push sends."""
    registry = CollectorRegistry()

    def gauge(name: str, documentation: str, value: float) -> None:
        Gauge(name, documentation, registry=registry).set(value)

    gauge(
        "ticket_cache_job_riders_done",
        "Riders the run got through (refreshed, fresh or skipped).",
        summary.done,
    )
    gauge("ticket_cache_job_riders_failed", "Riders whose refresh failed in the run.", summary.failed)
    skipped = Gauge(
        "ticket_cache_job_riders_skipped",
        "Riders the run did not call Bytemark for, by reason.",
        ["reason"],
        registry=registry,
    )
    for reason in sorted({*SKIP_REASONS, *summary.skipped_by_reason}):
        skipped.labels(reason).set(summary.skipped_by_reason.get(reason, 0))
    gauge("ticket_cache_job_duration_seconds", "How long the run took.", summary.duration_seconds)
    gauge(
        "ticket_cache_job_last_run_timestamp_seconds",
        "When the run ended (epoch seconds).",
        summary.finished_at,
    )
    gauge(
        "ticket_cache_job_last_run_succeeded",
        "1 when the run succeeded (exit code 0), else 0.",
        summary.succeeded,
    )
    gauge(
        "ticket_cache_job_last_run_stopped",
        "1 when the run stopped early (an outage, cancelled, an error).",
        bool(summary.stopped),
    )
    if summary.succeeded:
        gauge(
            "ticket_cache_job_last_success_timestamp_seconds",
            "When the last successful run ended (epoch seconds).",
            summary.finished_at,
        )
    return registry


def grouping_key(summary: RunSummary) -> dict[str, str]:
    return {"shard": str(summary.shard)}


class PushgatewayReporter:
    def __init__(self, url: str, timeout_seconds: float = 10.0) -> None:
        self._url = url
        self._timeout = timeout_seconds

    async def report(self, summary: RunSummary) -> None:
        try:
            # prometheus_client's push is a blocking HTTP call: off the event loop
            await asyncio.to_thread(
                pushadd_to_gateway,
                self._url,
                job=JOB_PREFIX + summary.job,
                registry=summary_registry(summary),
                grouping_key=grouping_key(summary),
                timeout=self._timeout,
            )
        except OSError as exc:  # URLError, refused, timed out: the summary still goes to the log
            log.warning("run summary not pushed to the Pushgateway", extra={"reason": str(exc)})
