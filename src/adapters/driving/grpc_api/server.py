"""The grpc.aio server: the service, health, reflection, interceptors, TLS; and its shutdown.

Create it inside the running event loop (aio objects belong to the loop that made them) and
after any fork.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from adapters.driving.grpc_api.cache_encoding import DEFAULT_MEMO_BYTES, CacheEncoder
from adapters.driving.grpc_api.converters import ProtoConverter
from adapters.driving.grpc_api.credentials import CredentialsFile
from adapters.driving.grpc_api.drain import DrainingHealthServicer
from adapters.driving.grpc_api.interceptors import ServiceInterceptor
from adapters.driving.grpc_api.reflection import enable_reflection
from adapters.driving.grpc_api.servicer import TicketCacheServicer
from adapters.driving.grpc_api.tracing import TracingInterceptor
from application.api import TicketCacheApi
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["TicketCacheService"].full_name
GET_TICKET_CACHE_METHOD = f"/{SERVICE_NAME}/GetTicketCache"
HEALTH_SERVICE_NAME: str = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """PEM-encoded server certificate chain and key. With `client_ca`, clients must present
    a certificate signed by it (mutual TLS)."""

    cert_chain: bytes
    private_key: bytes
    client_ca: bytes | None = None

    def __repr__(self) -> str:  # never print the private key
        mtls = self.client_ca is not None
        return f"TlsConfig(cert_chain=<{len(self.cert_chain)} bytes>, private_key=***, mtls={mtls})"

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.cert_chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )


def build_servicer(
    use_cases: TicketCacheApi, encoded_entry_memo_bytes: int = DEFAULT_MEMO_BYTES
) -> TicketCacheServicer:
    """The service with its encoder memo and drain; one per process, shared by the gRPC server and
    the HTTP port (adapters.driving.http_api), so both share the memo and end streams together."""
    return TicketCacheServicer(use_cases, ProtoConverter(CacheEncoder(memo_bytes=encoded_entry_memo_bytes)))


async def create_server(
    use_cases: TicketCacheApi,
    *,
    listen: str,
    auth_token: str | None = None,
    credentials: CredentialsFile | None = None,
    tls: TlsConfig | None = None,
    max_message_bytes: int = 64 * 1024 * 1024,
    max_receive_bytes: int = 1024 * 1024,
    encoded_entry_memo_bytes: int = DEFAULT_MEMO_BYTES,
    reuse_port: bool = False,
    servicer: TicketCacheServicer | None = None,
    traced: bool = False,
) -> tuple[grpc.aio.Server, int, DrainingHealthServicer]:
    """Build, bind and start the server. Returns it, the bound port (useful with port 0,
    e.g. `listen="127.0.0.1:0"`) and the health servicer (for graceful_shutdown).

    `max_message_bytes` bounds responses: a user with thousands of passes exceeds grpc's 4 MiB
    default. `max_receive_bytes` bounds requests by their decompressed size (grpc core stops
    inflating a compressed body past it), and does so before any interceptor, auth included,
    runs: keep it small, the largest valid request (10,000 user ids) is about 100 KB.
    `encoded_entry_memo_bytes` sizes the memo of encoded entries that makes repeated reads cheap
    (0 disables it). `reuse_port`: SO_REUSEPORT for GRPC_WORKERS. `traced` opens a span per call
    (docs/tracing.md). A `servicer` from `build_servicer` is served as is (shared with HTTP_LISTEN).
    `credentials` (scoped tokens, reloaded by its owner) replaces `auth_token` (one `operate` token).
    """
    servicer = servicer or build_servicer(use_cases, encoded_entry_memo_bytes)
    # One interceptor for metrics, request id, auth and the malformed-request guard: grpc
    # runs every interceptor on every call, and this one routes a method in a dict lookup.
    interceptor = ServiceInterceptor(
        auth_token or None,
        response_serializers={GET_TICKET_CACHE_METHOD: servicer.encoder.serialize_response},
        credentials=credentials,
    )
    server = grpc.aio.server(
        interceptors=[*([TracingInterceptor()] if traced else []), interceptor],
        options=[
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_receive_bytes),
            # Accept the clients' keepalive pings (every 60 s) during quiet long calls, not only 5 min apart.
            ("grpc.http2.min_ping_interval_without_data_ms", 20_000),
            *([("grpc.so_reuseport", 1)] if reuse_port else []),
        ],
    )

    pb_grpc.add_TicketCacheServiceServicer_to_server(servicer, server)

    health = DrainingHealthServicer(servicer.drain)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    enable_reflection(server, (SERVICE_NAME, HEALTH_SERVICE_NAME))

    if tls is None:
        port = server.add_insecure_port(listen)
    else:
        port = server.add_secure_port(listen, tls.server_credentials())
    if port == 0:
        raise OSError(f"gRPC server could not bind {listen!r}")

    await server.start()
    # set() is a coroutine: without await the status would never change.
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    await health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    return server, port, health


async def graceful_shutdown(
    server: grpc.aio.Server, health: DrainingHealthServicer, grace: float = 5.0
) -> None:
    """Report NOT_SERVING (so readiness probes and load balancers drop the pod) and end open
    bulk streams with UNAVAILABLE, then stop: new calls are refused, unary calls in flight get
    `grace` seconds to finish before they are cancelled. Open health Watch streams also hold
    the server until the grace ends. Call it from a `finally`."""
    await health.enter_graceful_shutdown()
    await server.stop(grace)
