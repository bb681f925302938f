"""Serve the HTTP port with hypercorn (HTTP/1.1 and HTTP/2 with trailers, which Connect's gRPC
protocol needs) in the gRPC server's process and event loop, and stop it with the gRPC server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypercorn.typing import ASGIFramework

from adapters.driving.grpc_api.interceptors import ServiceInterceptor
from adapters.driving.grpc_api.servicer import TicketCacheServicer
from adapters.driving.http_api.edge import CallEdge
from adapters.driving.http_api.service import ConnectTicketCacheService
from bytemark.ticketcache.v1.ticket_cache_connect import TicketCacheServiceASGIApplication

ASGIApp = ASGIFramework
BACKLOG = 100  # hypercorn's default
_GRPC_OVER_HTTP1 = (
    b"gRPC needs HTTP/2 (prior knowledge in plain text, ALPN h2 over TLS); or use gRPC-Web or Connect\n"
)


def create_http_app(
    servicer: TicketCacheServicer, access: ServiceInterceptor, max_request_bytes: int
) -> ASGIApp:
    """The ASGI application: Connect (JSON and binary), gRPC-Web and gRPC for TicketCacheService."""
    connect = TicketCacheServiceASGIApplication(
        ConnectTicketCacheService(servicer),
        interceptors=[CallEdge(access)],
        read_max_bytes=max_request_bytes,
    )
    return _grpc_needs_http2(connect)


def _grpc_needs_http2(app: ASGIApp) -> ASGIApp:
    """gRPC (not gRPC-Web) sends its status in HTTP/2 trailers: over HTTP/1.1 answer 505 with the
    reason, instead of connectrpc's RuntimeError (a traceback in the log, a reset for the caller)."""

    async def guarded(scope: Any, receive: Any, send: Any) -> None:  # ASGI's typed dicts, read loosely
        content_type = dict(scope.get("headers", ())).get(b"content-type", b"")
        if (
            scope["type"] == "http"
            and scope.get("http_version") != "2"
            and content_type.startswith(b"application/grpc")
            and not content_type.startswith(b"application/grpc-web")
        ):
            body = _GRPC_OVER_HTTP1
            headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 505, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return cast(ASGIApp, guarded)


@dataclass(frozen=True, slots=True)
class HttpTls:
    """PEM files (hypercorn reads paths): the server's certificate and key, and with `client_ca_file`
    clients must present a certificate signed by it (mutual TLS), as on the gRPC port."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None


@dataclass
class HttpServer:
    port: int
    _stop: asyncio.Event
    _serving: asyncio.Task[None]

    async def stop(self, grace: float) -> None:
        """Refuse new connections; calls in flight get `grace` seconds (open streams are ended by
        the servicer's drain, which the gRPC shutdown starts)."""
        self._stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._serving), grace + 1)


def bind(listen: str, reuse_port: bool = False) -> socket.socket:
    """A listening socket on `listen` (host:port; port 0 picks one). Raises OSError when taken."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:  # GRPC_WORKERS processes share the port, as they share GRPC_LISTEN's
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, int(port)))
        # Listening now, not when hypercorn's task gets to it: a caller that saw the ready line
        # waits in the backlog instead of being refused.
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


async def start_http_server(
    app: ASGIApp,
    listen: str,
    *,
    grace: float,
    tls: HttpTls | None = None,
    reuse_port: bool = False,
) -> HttpServer:
    sock = bind(listen, reuse_port)
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns the socket from here
    config.graceful_timeout = grace
    config.errorlog = logging.getLogger("hypercorn.error")  # through the service's log format
    config.accesslog = None
    if tls is not None:  # the gRPC port's certificate, and its client CA (mTLS) when it has one
        config.certfile, config.keyfile = str(tls.cert_file), str(tls.key_file)
        if tls.client_ca_file is not None:
            config.ca_certs, config.verify_mode = str(tls.client_ca_file), ssl.CERT_REQUIRED
    stop = asyncio.Event()
    serving = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait), name="http-server")
    return HttpServer(port, stop, serving)
