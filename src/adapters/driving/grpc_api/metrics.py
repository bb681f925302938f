"""The gRPC server's own metrics, with go-grpc-prometheus's names and labels so stock dashboards
(Grafana.com dashboard 9186, "gRPC server" of grpc-ecosystem/go-grpc-prometheus) work unchanged:

- `grpc_server_started_total{grpc_type,grpc_service,grpc_method}`;
- `grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}`;
- `grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method}` (a histogram).

A call only adds to plain ints and floats of its method (no lock, no labelled child lookup): the
event loop is the only writer. The registry reads them when Prometheus scrapes, through the
`Collector` below, on the metrics server's thread; a scrape may see a call half counted (its
bucket but not yet its sum), which the next scrape corrects. Why: bench/RESULTS.md,
"Issue 22/24, freshness from the store and cheaper gRPC metrics".
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client.core import REGISTRY, CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

# Latency buckets (seconds) for calls that range from a cache read (~1 ms) to a slow
# Bytemark refresh with retries (~tens of seconds).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BUCKET_LABELS = [*map(str, map(float, LATENCY_BUCKETS)), "+Inf"]


class MethodCounts:
    """One method's counts. `handled` is keyed by status code name."""

    __slots__ = ("buckets", "handled", "labels", "seconds", "started")

    def __init__(self, labels: tuple[str, str, str]) -> None:
        self.labels = labels  # (grpc_type, grpc_service, grpc_method)
        self.started = 0
        self.handled: dict[str, int] = {}
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # per bucket, not cumulative; last is +Inf
        self.seconds = 0.0

    def finished(self, code: str, elapsed: float) -> None:
        self.handled[code] = self.handled.get(code, 0) + 1
        self.buckets[bisect_left(LATENCY_BUCKETS, elapsed)] += 1  # `le` is inclusive
        self.seconds += elapsed


def method_labels(full_method: str, grpc_type: str) -> tuple[str, str, str]:
    """`/pkg.Service/Method` -> (grpc_type, 'pkg.Service', 'Method'), as go-grpc-prometheus splits it."""
    service, _, method = full_method.lstrip("/").partition("/")
    return grpc_type, service, method


class GrpcServerMetrics(Collector):
    """Every method's counts, exposed at scrape time."""

    def __init__(self) -> None:
        self._methods: dict[str, MethodCounts] = {}

    def method(self, full_method: str, grpc_type: str) -> MethodCounts:
        """The counts of `full_method` (made on its first call; the interceptor keeps them)."""
        counts = self._methods.get(full_method)
        if counts is None:
            counts = self._methods[full_method] = MethodCounts(method_labels(full_method, grpc_type))
        return counts

    def collect(self) -> Iterator[Metric]:
        names = ["grpc_type", "grpc_service", "grpc_method"]
        started = CounterMetricFamily(
            "grpc_server_started_total", "RPCs started on the server.", labels=names
        )
        handled = CounterMetricFamily(
            "grpc_server_handled_total",
            "RPCs completed on the server, regardless of success or failure.",
            labels=[*names, "grpc_code"],
        )
        seconds = HistogramMetricFamily(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC's handler to its completion (whole stream for streams).",
            labels=names,
        )
        for counts in list(self._methods.values()):
            labels = list(counts.labels)
            started.add_metric(labels, counts.started)
            for code, n in list(counts.handled.items()):
                handled.add_metric([*labels, code], n)
            cumulative, buckets = 0, []
            for bound, n in zip(_BUCKET_LABELS, list(counts.buckets), strict=True):
                cumulative += n
                buckets.append((bound, cumulative))
            seconds.add_metric(labels, buckets, counts.seconds)
        yield from (started, handled, seconds)


#: The process's gRPC metrics, in prometheus_client's default registry beside the other adapters'.
GRPC_SERVER_METRICS = GrpcServerMetrics()
REGISTRY.register(GRPC_SERVER_METRICS)
