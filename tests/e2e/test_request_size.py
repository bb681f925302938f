"""Requests are bounded by GRPC_MAX_RECEIVE_BYTES, by their decompressed size: a small gzip body
that inflates to 60 MiB, sent without a token, is refused before it is held whole.

gRPC decompresses and parses a request before any interceptor (auth included) sees it, so this
bound is the only one a stranger meets (issue 21, "Why" item 1)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from devtools.harness import SERVICE, SandboxProcess, ServerProcess, start_server
from devtools.rss import RssSampler

AUTH_TOKEN = "e2e-request-size-token-5b1f"
EXPANDED_BYTES = 60 * 1024 * 1024
CONCURRENT_BODIES = 8
PEAK_GROWTH_LIMIT = 64 * 1000 * 1000


@pytest.fixture(scope="module")
def authed_server(sandbox: SandboxProcess, work_dir: Path) -> Iterator[ServerProcess]:
    process = start_server(sandbox, work_dir, GRPC_AUTH_TOKEN=AUTH_TOKEN, LOG_LEVEL="INFO")
    yield process
    process.stop()


def inflating_request() -> bytes:
    """A GetTicketCacheRequest-shaped body whose one unknown bytes field holds 60 MiB of one letter:
    gzip shrinks it to about 60 KB on the wire."""
    payload = b"a" * (EXPANDED_BYTES - 16)
    length, varint = len(payload), bytearray()
    while length > 0x7F:
        varint.append((length & 0x7F) | 0x80)
        length >>= 7
    varint.append(length)
    return b"\xfa\x01" + bytes(varint) + payload  # field 31, wire type 2


async def test_gzip_bodies_inflating_to_60_mib_without_a_token_do_not_grow_the_server(
    authed_server: ServerProcess,
) -> None:
    body = inflating_request()
    async with grpc.aio.insecure_channel(authed_server.address) as channel:
        get = channel.unary_unary(f"/{SERVICE}/GetTicketCache")
        with RssSampler(authed_server.pid, interval=0.002) as rss:
            answers = await asyncio.gather(
                *(get(body, compression=grpc.Compression.Gzip, timeout=60) for _ in range(CONCURRENT_BODIES)),
                return_exceptions=True,
            )
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        purge = await channel.unary_unary(
            f"/{SERVICE}/PurgeOrphanedCaches",
            request_serializer=pb.PurgeOrphanedCachesRequest.SerializeToString,
            response_deserializer=pb.PurgeOrphanedCachesResponse.FromString,
        )(
            pb.PurgeOrphanedCachesRequest(dry_run=True),
            metadata=(("authorization", f"Bearer {AUTH_TOKEN}"),),
            timeout=10,
        )

    codes = [answer.code() if isinstance(answer, grpc.aio.AioRpcError) else answer for answer in answers]
    assert rss.growth < PEAK_GROWTH_LIMIT, f"peak RSS grew {rss.growth / 1e6:.0f} MB"
    assert codes == [grpc.StatusCode.RESOURCE_EXHAUSTED] * CONCURRENT_BODIES
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert purge.dry_run
