"""The HTTP port's own call metrics: the gRPC port's labels, plus the protocol the caller spoke, so
a dashboard can add the two ports up or tell them apart."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from adapters.driving.grpc_api.metrics import LATENCY_BUCKETS

HTTP_RPC_HANDLED = Counter(
    "http_rpc_server_handled_total",
    "RPCs completed on the HTTP port (HTTP_LISTEN), by method, status code and protocol "
    "(connect, grpc_web, grpc).",
    ["grpc_method", "grpc_code", "protocol"],
)
HTTP_RPC_HANDLING_SECONDS = Histogram(
    "http_rpc_server_handling_seconds",
    "Time from the start of an RPC on the HTTP port to its completion (whole stream for streams).",
    ["grpc_method", "protocol"],
    buckets=LATENCY_BUCKETS,
)
