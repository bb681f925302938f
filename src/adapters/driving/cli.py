"""`bytemark-ticket-cache serve | migrate | run JOB`, client commands that call a running server
(get, check, refresh-stale, ...), plus commands plugged in by entry points (demo, sandbox)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import entry_points
from typing import Protocol

from adapters.common.logs import configure_logging
from adapters.composition.container import build_container, migrate_stores, resolve, tracing_session
from adapters.composition.settings import (
    SERVE_REQUIRED,
    ConfigError,
    Settings,
    load_settings,
    split_host_port,
)
from adapters.driving import event_loop
from adapters.driving.grpc_api.credentials import CredentialsFile, CredentialsFileError
from adapters.driving.grpc_api.interceptors import ServiceInterceptor
from adapters.driving.grpc_api.server import TlsConfig, build_servicer, create_server, graceful_shutdown
from adapters.driving.grpc_api.servicer import TicketCacheServicer
from adapters.driving.http_api.server import HttpServer, HttpTls, create_http_app, start_http_server
from adapters.driving.metrics_endpoint import start_metrics_server
from adapters.driving.operator_cli.arguments import (
    CLIENT_COMMANDS,
    RUN_COMMAND,
    add_client_commands,
    add_program_flags,
    add_run_command,
)
from adapters.driving.workers import serve_in_workers
from application.errors import StoreUnavailable

log = logging.getLogger("bytemark_ticket_cache")

# Development commands (demo, sandbox) live outside the production packages and plug in here.
PLUGIN_GROUP = "bytemark_ticket_cache.commands"
BUILTIN_COMMANDS = ("serve", "migrate", RUN_COMMAND, *CLIENT_COMMANDS)


class StartupError(Exception):
    """The service could not start; the message tells the operator why (no traceback)."""


def _tls_config(settings: Settings) -> TlsConfig | None:
    if not settings.tls_enabled:
        return None
    assert settings.grpc_tls_cert_file is not None and settings.grpc_tls_key_file is not None
    ca = settings.grpc_tls_client_ca_file
    return TlsConfig(
        cert_chain=open(settings.grpc_tls_cert_file, "rb").read(),
        private_key=open(settings.grpc_tls_key_file, "rb").read(),
        client_ca=open(ca, "rb").read() if ca else None,
    )


async def wait_for_stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _credentials(settings: Settings) -> CredentialsFile | None:
    """GRPC_AUTH_TOKENS_FILE and GRPC_AUTH_TOKEN, or None when neither is set (no auth)."""
    token = settings.grpc_auth_token.get_secret_value() if settings.grpc_auth_token else None
    path = settings.grpc_auth_tokens_file
    if path is None and not token:
        return None
    try:
        return CredentialsFile(path, token or None, poll_seconds=settings.grpc_auth_tokens_poll_seconds)
    except CredentialsFileError as problem:
        raise StartupError(f"GRPC_AUTH_TOKENS_FILE: {problem}") from None
    except (OSError, UnicodeDecodeError) as problem:
        raise StartupError(f"GRPC_AUTH_TOKENS_FILE: cannot read it ({type(problem).__name__})") from None


async def serve(settings: Settings, *, ready_message: str = "") -> None:
    container = build_container(settings)
    server = health = None
    http: HttpServer | None = None
    background: list[asyncio.Task[None]] = []
    try:
        await migrate_stores(container)
        use_cases = await resolve(container.use_cases)
        relay, feed = await resolve(container.relay), await resolve(container.change_feed)
        sweep = await resolve(container.delivered_id_sweep)
        sync_gauges = await resolve(container.sync_gauges)
        freshness_gauges = await resolve(container.freshness_gauges)
        background = [
            asyncio.create_task(relay.run(), name="outbox-relay"),
            asyncio.create_task(sweep.run(), name="outbox-delivered-sweep"),
            asyncio.create_task(sync_gauges.run(), name="sync-gauges-refresh"),
            asyncio.create_task(freshness_gauges.run(), name="freshness-gauges-refresh"),
            asyncio.create_task(feed.sweep_forever(), name="change-feed-sweep"),
        ]
        if settings.metrics_listen:  # before gRPC: a port clash must stop the start, not a serving server
            _start_metrics(settings.metrics_listen)
        credentials = _credentials(settings)
        if credentials is not None:
            background.append(asyncio.create_task(credentials.watch(), name="auth-tokens-file-watch"))
        servicer = build_servicer(use_cases)  # one for both ports: one memo, one drain at shutdown
        try:
            server, port, health = await create_server(
                use_cases,
                listen=settings.grpc_listen,
                credentials=credentials,
                tls=_tls_config(settings),
                max_message_bytes=settings.grpc_max_message_bytes,
                max_receive_bytes=settings.grpc_max_receive_bytes,
                reuse_port=settings.grpc_workers > 1,
                servicer=servicer,
                traced=settings.tracing_enabled,
            )
        except (RuntimeError, OSError) as exc:  # grpc raises RuntimeError when it cannot bind
            raise StartupError(
                f"cannot serve gRPC on {settings.grpc_listen} (GRPC_LISTEN; is the port in use?): {exc}"
            ) from None
        host = settings.grpc_listen.rsplit(":", 1)[0]
        log.info("serving gRPC", extra={"listen": f"{host}:{port}", "tls": settings.tls_enabled})
        if settings.http_listen:
            http = await start_http_port(settings, servicer, credentials)
        print(f"gRPC TicketCacheService listening on {host}:{port}{ready_message}", flush=True)
        await wait_for_stop_signal()
    finally:
        # Shut down from `finally`: under asyncio.run a Ctrl-C never reaches an `except` (grpc#26123).
        if server is not None and health is not None:
            grace = settings.grpc_shutdown_grace_seconds
            log.info("shutting down: NOT_SERVING, refusing new calls", extra={"grace_seconds": grace})
            # Together: the gRPC shutdown starts the shared drain, which ends the HTTP port's streams too.
            await asyncio.gather(
                graceful_shutdown(server, health, grace=grace), *([http.stop(grace)] if http else [])
            )
            log.info("gRPC server stopped")
        for task in background:  # pending records stay stored; the next start delivers them
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await container.shutdown_resources()  # type: ignore[misc]


def _start_metrics(listen: str) -> None:
    metrics_host, metrics_port = split_host_port(listen)
    try:
        start_metrics_server(metrics_host, metrics_port)
    except OSError as exc:
        raise StartupError(
            f"cannot serve /metrics on {metrics_host}:{metrics_port}"
            f" (METRICS_LISTEN; is the port in use?): {exc}"
        ) from None


async def start_http_port(
    settings: Settings, servicer: TicketCacheServicer, credentials: CredentialsFile | None
) -> HttpServer:
    """HTTP_LISTEN: the same servicer, access check (the same credentials, reloaded once for both
    ports), request size limit and TLS as the gRPC port."""
    assert settings.http_listen is not None
    access = ServiceInterceptor(credentials=credentials)
    app = create_http_app(servicer, access, settings.grpc_max_receive_bytes)
    tls = None
    if settings.tls_enabled:
        assert settings.grpc_tls_cert_file is not None and settings.grpc_tls_key_file is not None
        ca = settings.grpc_tls_client_ca_file
        tls = HttpTls(settings.grpc_tls_cert_file, settings.grpc_tls_key_file, ca)
    try:
        http = await start_http_server(
            app,
            settings.http_listen,
            grace=settings.grpc_shutdown_grace_seconds,
            tls=tls,
            reuse_port=settings.grpc_workers > 1,
        )
    except OSError as exc:
        raise StartupError(
            f"cannot serve HTTP on {settings.http_listen} (HTTP_LISTEN; is the port in use?): {exc}"
        ) from None
    host = settings.http_listen.rsplit(":", 1)[0]
    log.info("serving HTTP (Connect, gRPC-Web, JSON)", extra={"listen": f"{host}:{http.port}"})
    print(f"HTTP (Connect, gRPC-Web, JSON) listening on {host}:{http.port}", flush=True)
    return http


async def run_migrate(settings: Settings) -> None:
    container = build_container(settings)
    try:
        for line in await migrate_stores(container):
            print(f"migrated {line}")
    finally:
        await container.shutdown_resources()  # type: ignore[misc]


class PluginCommand(Protocol):
    help: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    async def run(self, args: argparse.Namespace, settings: Settings) -> None: ...


def _plugins(argv: Sequence[str]) -> dict[str, PluginCommand]:
    """Load plugged-in commands only when the command line may name one, so `serve` never imports them."""
    if argv and argv[0] in BUILTIN_COMMANDS:
        return {}
    return {entry.name: entry.load() for entry in entry_points(group=PLUGIN_GROUP)}


def _parser(plugins: dict[str, PluginCommand]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bytemark-ticket-cache", description=__doc__)
    add_program_flags(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gRPC service as configured by the environment")
    commands.add_parser("migrate", help="create tables (SQLite or MySQL) and Mongo indexes, idempotently")
    add_run_command(commands)
    add_client_commands(commands)
    for name, plugin in sorted(plugins.items()):
        plugin.add_arguments(commands.add_parser(name, help=plugin.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    plugins = _plugins(argv)
    args = _parser(plugins).parse_args(argv)
    if args.command in CLIENT_COMMANDS:  # a client needs no server configuration
        from adapters.driving.operator_cli.client_commands import run_client_command

        return run_client_command(args)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, settings.secret_values())
    if args.command in ("serve", RUN_COMMAND):
        try:
            settings.require(*SERVE_REQUIRED)
        except ConfigError as exc:
            print(
                f"{exc}\n(`{args.command}` needs these; `demo` runs against the embedded sandbox)",
                file=sys.stderr,
            )
            return 2
    if args.command == RUN_COMMAND:
        from adapters.driving.operator_cli.jobs import run_job

        with tracing_session(settings):
            return run_job(args, settings)
    if args.command == "serve" and settings.grpc_workers > 1:
        return serve_in_workers(settings, lambda worker: _run(lambda: serve(worker), worker))
    runners: dict[str, Callable[[], Awaitable[None]]] = {
        "serve": lambda: serve(settings),
        "migrate": lambda: run_migrate(settings),
    }
    for name, plugin in plugins.items():
        runners[name] = functools.partial(plugin.run, args, settings)
    return _run(runners[args.command], settings)


def _run(command: Callable[[], Awaitable[None]], settings: Settings) -> int:
    """Run a command on the configured event loop; the exit code, with operator errors as one line."""
    try:
        # Here, in the process that serves (each GRPC_WORKERS worker after its fork): the span
        # exporter runs a thread, and leaving the block flushes the spans still buffered.
        with tracing_session(settings), contextlib.suppress(KeyboardInterrupt):
            event_loop.run(command(), settings.grpc_event_loop)  # type: ignore[arg-type]
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except StoreUnavailable as exc:  # e.g. migrate cannot reach MySQL: say which store, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
