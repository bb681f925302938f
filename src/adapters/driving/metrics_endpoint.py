"""`/metrics` for Prometheus: an inbound endpoint, so it drives from this side like the gRPC port."""

from __future__ import annotations

from prometheus_client import start_http_server


def start_metrics_server(host: str, port: int) -> None:
    """Serve `/metrics` on a background thread (prometheus_client's own server), from the default
    registry where every adapter's metrics live."""
    start_http_server(port, addr=host)
