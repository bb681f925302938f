"""Waiting for a connection, and saying why there is none: gRPC keeps the reason of a failed
connection attempt (refused, TLS handshake) out of the connectivity state, so a call that does not
wait for the channel (`wait_for_ready=False`) is what reports it."""

from __future__ import annotations

import asyncio

import grpc

#: The standard health check (exempt from the service's auth); only its failure status is read.
_PROBE_METHOD = "/grpc.health.v1.Health/Check"
_PROBE_SECONDS = 5.0
#: gRPC's wording for a failed TLS handshake: wrong CA, rejected certificate. Retrying cannot help.
_HANDSHAKE_FAILED = "handshake failed"


class ServerUnreachable(ConnectionError):
    """No connection to `target`: `reason` is gRPC's last connection error, e.g. a TLS handshake
    failing with CERTIFICATE_VERIFY_FAILED, or `Connection refused`."""

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"no connection to {target}: {reason}")
        self.target = target
        self.reason = reason


async def wait_connected(channel: grpc.aio.Channel, target: str, deadline: float) -> None:
    """Return once `channel` is READY. Raise ServerUnreachable at once when a TLS handshake failed
    (the same files will fail again), else when `deadline` seconds pass, naming the last error."""
    reason = ""
    try:
        async with asyncio.timeout(deadline):
            state = channel.get_state(try_to_connect=True)
            while state != grpc.ChannelConnectivity.READY:
                if state == grpc.ChannelConnectivity.TRANSIENT_FAILURE:
                    reason = await _last_connection_error(channel) or reason
                    if _HANDSHAKE_FAILED in reason.lower():
                        raise ServerUnreachable(target, reason)
                await channel.wait_for_state_change(state)
                state = channel.get_state(try_to_connect=True)
    except TimeoutError:
        raise ServerUnreachable(target, reason or f"not connected within {deadline:g} s") from None


async def _last_connection_error(channel: grpc.aio.Channel) -> str:
    """gRPC's reason for the failed connection, from a probe that fails fast instead of waiting;
    empty when the probe got through (the channel has just connected)."""
    probe = channel.unary_unary(_PROBE_METHOD)
    try:
        await probe(b"", timeout=_PROBE_SECONDS, wait_for_ready=False)
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.UNAVAILABLE:
            return _tidy(error.details() or "")
    return ""


def _tidy(details: str) -> str:
    """'failed to connect to all addresses; last error: X: OK' -> 'X' (the part that names it)."""
    _, _, last = details.rpartition("last error: ")
    return last.removesuffix(": OK") or details
