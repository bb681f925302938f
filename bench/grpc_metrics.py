"""What the gRPC server metrics cost per call: the plain counts the interceptor keeps now
(`MethodCounts`: an int for started, a dict entry per code, a bucket int and a float sum) against
what it did before, in the same run: prometheus_client's labelled Counter.inc() and
Histogram.observe() on children looked up once (each takes a lock and walks the buckets).
Rounds alternate; the best round of each counts. Also the cost of one scrape (collect) of a
server's worth of methods, which is now where the work goes.
"""

from __future__ import annotations

import argparse
import timeit

from common import emit
from prometheus_client import CollectorRegistry, Counter, Histogram

from adapters.driving.grpc_api.metrics import LATENCY_BUCKETS, GrpcServerMetrics

METHOD = "/bytemark.ticketcache.v1.TicketCacheService/GetTicketCache"
ELAPSED = 0.0004  # a hot RAW read: falls in the first buckets, as most calls do


def _before() -> timeit.Timer:
    registry = CollectorRegistry()
    handled = Counter("grpc_server_handled_total", "", ["grpc_method", "grpc_code"], registry=registry)
    seconds = Histogram(
        "grpc_server_handling_seconds", "", ["grpc_method"], buckets=LATENCY_BUCKETS, registry=registry
    )
    ok, observed = handled.labels(METHOD, "OK"), seconds.labels(METHOD)

    def record() -> None:
        ok.inc()
        observed.observe(ELAPSED)

    return timeit.Timer(record)


def _now() -> timeit.Timer:
    counts = GrpcServerMetrics().method(METHOD, "unary")

    def record() -> None:
        counts.started += 1
        counts.finished("OK", ELAPSED)

    return timeit.Timer(record)


def _scrape_us(methods: int) -> float:
    metrics = GrpcServerMetrics()
    for index in range(methods):
        counts = metrics.method(f"/svc.S/M{index}", "unary")
        for code in ("OK", "NOT_FOUND", "INVALID_ARGUMENT"):
            counts.finished(code, ELAPSED)
    return min(timeit.repeat(lambda: list(metrics.collect()), number=200, repeat=5)) / 200 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    before, now = _before(), _now()
    best = {"before": float("inf"), "now": float("inf")}
    for _ in range(args.rounds):
        for name, timer in (("before", before), ("now", now)):
            best[name] = min(best[name], timer.timeit(args.calls) / args.calls)
    emit(
        "grpc_metrics",
        record_us=round(best["now"] * 1e6, 3),
        baseline_record_us=round(best["before"] * 1e6, 3),
        ratio_vs_baseline=round(best["now"] / best["before"], 3),
        scrape_us_16_methods=round(_scrape_us(16), 1),
        calls_per_round=args.calls,
        rounds=args.rounds,
    )


if __name__ == "__main__":
    main()
