"""Bearer-token auth on every RPC, health without a token, TLS and mutual TLS: the whole matrix
here; tests/e2e/test_security.py only checks that the settings switch them on in a real process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import trustme
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc

from adapters.driving.grpc_api.server import TlsConfig, create_server, graceful_shutdown
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from tests.adapters.driving.grpc_api.conftest import AUTH_TOKEN, RunningServer
from tests.adapters.driving.grpc_api.fake_use_cases import FakeUseCases

SERVICE_DESCRIPTOR = pb.DESCRIPTOR.services_by_name["TicketCacheService"]
METHODS = [method.name for method in SERVICE_DESCRIPTOR.methods]
BAD_CREDENTIALS = [
    pytest.param((), id="no authorization"),
    pytest.param((("authorization", "Bearer wrong-token"),), id="wrong token"),
    pytest.param((("authorization", f"Basic {AUTH_TOKEN}"),), id="not bearer"),
    pytest.param((("authorization", AUTH_TOKEN),), id="no scheme"),
    pytest.param((("authorization", f"Bearer {AUTH_TOKEN[:-1]}X"),), id="same length, one character off"),
    pytest.param((("authorization", f"Bearer {AUTH_TOKEN}x"),), id="token with extra"),
    pytest.param((("x-authorization", f"Bearer {AUTH_TOKEN}"),), id="right token in another header"),
]


def bearer(token: str = AUTH_TOKEN) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def call_method(
    channel: grpc.aio.Channel, method: str, metadata: tuple[tuple[str, str], ...]
) -> grpc.StatusCode:
    """Call `method` with an empty request of its type; answer the status it ended with."""
    descriptor = SERVICE_DESCRIPTOR.methods_by_name[method]
    request = message_factory.GetMessageClass(descriptor.input_type)()
    path = f"/{SERVICE_DESCRIPTOR.full_name}/{method}"
    try:
        if descriptor.server_streaming:
            stream = channel.unary_stream(path, request_serializer=type(request).SerializeToString)
            async for _ in stream(request, metadata=metadata, timeout=5):
                pass
        else:
            unary = channel.unary_unary(path, request_serializer=type(request).SerializeToString)
            await unary(request, metadata=metadata, timeout=5)
    except grpc.aio.AioRpcError as error:
        assert AUTH_TOKEN not in (error.details() or "")
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("metadata", BAD_CREDENTIALS)
async def test_every_rpc_without_the_right_bearer_token_is_unauthenticated_before_its_handler(
    authed_server: RunningServer, metadata: tuple[tuple[str, str], ...]
) -> None:
    codes = {method: await call_method(authed_server.channel, method, metadata) for method in METHODS}

    assert len(codes) == 11  # every RPC of the service, unary and streaming, read from the descriptor
    assert codes == {method: grpc.StatusCode.UNAUTHENTICATED for method in METHODS}
    assert authed_server.use_cases.calls == []


async def test_every_rpc_with_the_right_bearer_token_reaches_its_handler(
    authed_server: RunningServer,
) -> None:
    codes = {method: await call_method(authed_server.channel, method, bearer()) for method in METHODS}

    assert grpc.StatusCode.UNAUTHENTICATED not in codes.values()
    assert len(authed_server.use_cases.calls) == len(METHODS)  # each handler ran once


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


async def test_tls_serves_clients_that_trust_the_ca_and_refuses_plaintext_and_untrusting_ones(
    ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    purge = pb.PurgeOrphanedCachesRequest(dry_run=True)
    async for port in _tls_server(tls_config(server_cert)):
        async with secure_channel(port, ca) as channel:
            response = await pb_grpc.TicketCacheServiceStub(channel).PurgeOrphanedCaches(purge)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as plaintext:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await pb_grpc.TicketCacheServiceStub(plaintext).PurgeOrphanedCaches(purge, timeout=5)
        async with secure_channel(port, trustme.CA()) as untrusting:
            with pytest.raises(grpc.aio.AioRpcError) as untrusted:
                await pb_grpc.TicketCacheServiceStub(untrusting).PurgeOrphanedCaches(purge, timeout=5)

        assert response.dry_run
        assert refused.value.code() == untrusted.value.code() == grpc.StatusCode.UNAVAILABLE


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
