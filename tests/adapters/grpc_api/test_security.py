"""Bearer-token auth (unary and streaming), health without a token, TLS and mutual TLS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc

from adapters.grpc_api.server import TlsConfig, create_server, graceful_shutdown
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from tests.adapters.grpc_api.conftest import AUTH_TOKEN, RunningServer
from tests.adapters.grpc_api.fake_use_cases import FakeUseCases

BAD_CREDENTIALS = [
    pytest.param((), id="no authorization"),
    pytest.param((("authorization", "Bearer wrong-token"),), id="wrong token"),
    pytest.param((("authorization", f"Basic {AUTH_TOKEN}"),), id="not bearer"),
    pytest.param((("authorization", f"Bearer {AUTH_TOKEN}x"),), id="token with extra"),
]


def bearer(token: str = AUTH_TOKEN) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.mark.parametrize("metadata", BAD_CREDENTIALS)
async def test_a_unary_call_without_the_right_bearer_token_is_unauthenticated(
    authed_server: RunningServer, metadata: tuple[tuple[str, str], ...]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await authed_server.stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=42), metadata=metadata)

    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert AUTH_TOKEN not in (raised.value.details() or "")
    assert authed_server.use_cases.calls == []


@pytest.mark.parametrize("metadata", BAD_CREDENTIALS)
async def test_a_streaming_call_without_the_right_bearer_token_is_unauthenticated(
    authed_server: RunningServer, metadata: tuple[tuple[str, str], ...]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in authed_server.stub.RefreshStaleCaches(
            pb.RefreshStaleCachesRequest(), metadata=metadata
        ):
            pass

    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert authed_server.use_cases.calls == []


async def test_the_right_bearer_token_lets_unary_and_streaming_calls_through(
    authed_server: RunningServer,
) -> None:
    response = await authed_server.stub.GetTicketCache(
        pb.GetTicketCacheRequest(user_id=42), metadata=bearer()
    )
    events = [
        e
        async for e in authed_server.stub.RefreshStaleCaches(
            pb.RefreshStaleCachesRequest(), metadata=bearer()
        )
    ]

    assert response.cache.user_id == 42
    assert events == []


async def test_health_answers_without_a_token(authed_server: RunningServer) -> None:
    health = health_pb2_grpc.HealthStub(authed_server.channel)

    response = await health.Check(health_pb2.HealthCheckRequest(service=""))

    assert response.status == health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("localhost")


def tls_config(cert: trustme.LeafCert, client_ca: trustme.CA | None = None) -> TlsConfig:
    return TlsConfig(
        cert_chain=b"".join(pem.bytes() for pem in cert.cert_chain_pems),
        private_key=cert.private_key_pem.bytes(),
        client_ca=client_ca.cert_pem.bytes() if client_ca else None,
    )


async def _tls_server(tls: TlsConfig) -> AsyncIterator[int]:
    server, port, health = await create_server(FakeUseCases(), listen="127.0.0.1:0", tls=tls)
    try:
        yield port
    finally:
        await graceful_shutdown(server, health, grace=0.5)


def secure_channel(
    port: int, ca: trustme.CA, client_cert: trustme.LeafCert | None = None
) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.cert_pem.bytes(),
        private_key=client_cert.private_key_pem.bytes() if client_cert else None,
        certificate_chain=b"".join(p.bytes() for p in client_cert.cert_chain_pems) if client_cert else None,
    )
    # 127.0.0.1 rather than localhost (which may resolve to ::1); the cert names localhost
    return grpc.aio.secure_channel(
        f"127.0.0.1:{port}", credentials, options=[("grpc.ssl_target_name_override", "localhost")]
    )


async def test_tls_serves_clients_that_trust_the_ca(ca: trustme.CA, server_cert: trustme.LeafCert) -> None:
    async for port in _tls_server(tls_config(server_cert)):
        async with secure_channel(port, ca) as channel:
            response = await pb_grpc.TicketCacheServiceStub(channel).PurgeOrphanedCaches(
                pb.PurgeOrphanedCachesRequest(dry_run=True)
            )
        assert response.dry_run


async def test_mutual_tls_accepts_a_client_certificate_from_the_client_ca(
    ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    client_ca = trustme.CA()
    async for port in _tls_server(tls_config(server_cert, client_ca=client_ca)):
        async with secure_channel(port, ca, client_ca.issue_cert("batch-job@example.internal")) as channel:
            response = await pb_grpc.TicketCacheServiceStub(channel).PurgeOrphanedCaches(
                pb.PurgeOrphanedCachesRequest(dry_run=True)
            )
        assert response.dry_run


@pytest.mark.parametrize("client_cert_from", ["nobody", "another CA"])
async def test_mutual_tls_refuses_clients_without_a_certificate_from_the_client_ca(
    ca: trustme.CA, server_cert: trustme.LeafCert, client_cert_from: str
) -> None:
    client_ca = trustme.CA()
    client_cert = trustme.CA().issue_cert("intruder") if client_cert_from == "another CA" else None
    async for port in _tls_server(tls_config(server_cert, client_ca=client_ca)):
        async with secure_channel(port, ca, client_cert) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await pb_grpc.TicketCacheServiceStub(channel).PurgeOrphanedCaches(
                    pb.PurgeOrphanedCachesRequest(dry_run=True), timeout=5
                )
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
