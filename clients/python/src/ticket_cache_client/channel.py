"""How the client's channel is made: TLS, keepalive, round_robin and gRPC's own retry policy.

Retries of UNAVAILABLE are gRPC's service-config `retryPolicy` (the channel replays the call,
with backoff, until a response has started), not a loop in this package.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

SERVICE = "bytemark.ticketcache.v1.TicketCacheService"
DEFAULT_TARGET = "127.0.0.1:50051"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a rider with 10,000 passes exceeds grpc's 4 MiB default


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """gRPC retryPolicy for UNAVAILABLE: `max_attempts` counts the first try (gRPC caps it at 5)."""

    max_attempts: int = 4
    initial_backoff_seconds: float = 0.2
    max_backoff_seconds: float = 5.0
    backoff_multiplier: float = 2.0

    def as_service_config(self) -> dict[str, Any]:
        return {
            "maxAttempts": self.max_attempts,
            "initialBackoff": f"{self.initial_backoff_seconds}s",
            "maxBackoff": f"{self.max_backoff_seconds}s",
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files: `ca` verifies the server; `cert` and `key` (both or neither) are for mutual TLS."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.cert is None) != (self.key is None):
            raise ValueError("TLS client certificate and key go together: give both or neither")
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.read_bytes() if self.ca else None,
            private_key=self.key.read_bytes() if self.key else None,
            certificate_chain=self.cert.read_bytes() if self.cert else None,
        )


def service_config(retry: RetryPolicy | None, load_balancing: str = "round_robin") -> str:
    """The channel's service config: the load-balancing policy and, unless disabled, retries."""
    config: dict[str, Any] = {"loadBalancingConfig": [{load_balancing: {}}]}
    if retry is not None:
        config["methodConfig"] = [{"name": [{"service": SERVICE}], "retryPolicy": retry.as_service_config()}]
    return json.dumps(config)


def channel_options(
    retry: RetryPolicy | None,
    *,
    keepalive_seconds: float,
    load_balancing: str = "round_robin",
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> Sequence[tuple[str, Any]]:
    return [
        ("grpc.service_config", service_config(retry, load_balancing)),
        ("grpc.enable_retries", 1 if retry is not None else 0),
        # Pings only while calls are open, so idle channels never earn the server's too_many_pings.
        ("grpc.keepalive_time_ms", int(keepalive_seconds * 1000)),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]


def open_channel(
    target: str,
    *,
    tls: TlsFiles | None = None,
    retry: RetryPolicy | None = DEFAULT_RETRY,
    keepalive_seconds: float = 60.0,
    load_balancing: str = "round_robin",
) -> grpc.aio.Channel:
    """An aio channel to `target`: `host:port`, `dns:///name:port` or several addresses as
    `ipv4:127.0.0.1:50051,127.0.0.1:50052` (spread by round_robin). Make it inside the running loop."""
    options = channel_options(retry, keepalive_seconds=keepalive_seconds, load_balancing=load_balancing)
    if tls is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, tls.credentials(), options=options)
