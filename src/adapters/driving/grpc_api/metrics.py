"""The gRPC server's own metrics (names follow go-grpc-prometheus, so existing dashboards apply).

They live in prometheus_client's default registry beside the driven adapters' metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Latency buckets (seconds) for calls that range from a cache read (~1 ms) to a slow
# Bytemark refresh with retries (~tens of seconds).
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


GRPC_SERVER_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by method and status code.",
    ["grpc_method", "grpc_code"],
)
GRPC_SERVER_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC's handler to its completion (whole stream for streaming RPCs).",
    ["grpc_method"],
    buckets=_LATENCY_BUCKETS,
)
