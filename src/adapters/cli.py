"""`bytemark-ticket-cache serve | demo | sandbox | migrate`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from pydantic import SecretStr

from adapters.container import Container, build_container, resolve
from adapters.grpc_api.server import TlsConfig, create_server, graceful_shutdown
from adapters.observability.logs import configure_logging
from adapters.observability.metrics import start_metrics_server
from adapters.sandbox.config import SandboxConfig
from adapters.sandbox.server import start_sandbox
from adapters.sandbox.state import SandboxState
from adapters.settings import SERVE_REQUIRED, ConfigError, Settings, load_settings, split_host_port
from application.errors import StoreUnavailable

log = logging.getLogger("bytemark_ticket_cache")

DEMO_FIRST_USER_ID = 1001
DEMO_SQLITE_PATH = "var/demo.sqlite3"


class StartupError(Exception):
    """The service could not start; the message tells the operator why (no traceback)."""


def _tls_config(settings: Settings) -> TlsConfig | None:
    if not settings.grpc_tls_cert_file or not settings.grpc_tls_key_file:
        return None
    ca = settings.grpc_tls_client_ca_file
    return TlsConfig(
        cert_chain=open(settings.grpc_tls_cert_file, "rb").read(),
        private_key=open(settings.grpc_tls_key_file, "rb").read(),
        client_ca=open(ca, "rb").read() if ca else None,
    )


async def migrate_stores(container: Container) -> list[str]:
    """Create tables and indexes of the configured stores, idempotently."""
    done = []
    for name in ("token_store", "refresh_log", "cache_store", "ticket_log"):
        store = await resolve(getattr(container, name))
        create = getattr(store, "create_schema", None) or store.create_indexes
        await create()
        done.append(f"{name}: {type(store).__name__}")
    return done


async def _wait_for_stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def serve(settings: Settings, *, ready_message: str = "") -> None:
    container = build_container(settings)
    server = health = None
    try:
        await migrate_stores(container)
        use_cases = await resolve(container.use_cases)
        auth = settings.grpc_auth_token
        try:
            server, port, health = await create_server(
                use_cases,
                listen=settings.grpc_listen,
                auth_token=auth.get_secret_value() if auth else None,
                tls=_tls_config(settings),
                max_message_bytes=settings.grpc_max_message_bytes,
            )
        except (RuntimeError, OSError) as exc:  # grpc raises RuntimeError when it cannot bind
            raise StartupError(
                f"cannot serve gRPC on {settings.grpc_listen} (GRPC_LISTEN; is the port in use?): {exc}"
            ) from None
        if settings.metrics_listen:
            host, metrics_port = split_host_port(settings.metrics_listen)
            start_metrics_server(host, metrics_port)
        host = settings.grpc_listen.rsplit(":", 1)[0]
        log.info("serving gRPC", extra={"listen": f"{host}:{port}", "tls": _tls_config(settings) is not None})
        print(f"gRPC TicketCacheService listening on {host}:{port}{ready_message}", flush=True)
        await _wait_for_stop_signal()
    finally:
        # Shut down from `finally`: under asyncio.run a Ctrl-C never reaches an `except` (grpc#26123).
        if server is not None and health is not None:
            await graceful_shutdown(server, health, grace=5.0)
        await container.shutdown_resources()  # type: ignore[misc]


async def demo(settings: Settings, users: int, latency_ms: float) -> None:
    """SQLite + an in-process Bytemark sandbox seeded with demo riders + the gRPC server."""
    state = SandboxState.seeded(
        users=users, passes_per_user=6, expired_per_user=3, first_user_id=DEMO_FIRST_USER_ID
    )
    config = SandboxConfig(latency_ms=latency_ms)
    sandbox = await start_sandbox("127.0.0.1", 0, state, config)
    try:
        demo_settings = settings.model_copy(
            update={
                "bytemark_customer_api_url": sandbox.url,
                "bytemark_account_api_url": sandbox.url,
                "bytemark_client_id": config.client_id,
                "bytemark_client_secret": SecretStr(config.client_secret),
                "mysql_url": None,
                "mongodb_url": None,
                "sqlite_path": settings.sqlite_path if os.environ.get("SQLITE_PATH") else DEMO_SQLITE_PATH,
            }
        )
        await _seed_demo_tokens(demo_settings, state)
        last = DEMO_FIRST_USER_ID + users - 1
        await serve(
            demo_settings,
            ready_message=(
                f"\nDemo: Bytemark sandbox at {sandbox.url}; riders {DEMO_FIRST_USER_ID}..{last} hold "
                f"tokens; store {demo_settings.sqlite_path}. Try:\n  .venv/bin/grpcurl -plaintext "
                f"-d '{{\"user_id\": {DEMO_FIRST_USER_ID}}}' {demo_settings.grpc_listen} "
                "bytemark.ticketcache.v1.TicketCacheService/CheckTicketCache"
            ),
        )
    finally:
        await sandbox.stop()


async def _seed_demo_tokens(settings: Settings, state: SandboxState) -> None:
    """Give every demo rider the sandbox's current tokens (fresh each start: the sandbox is new)."""
    container = build_container(settings)
    try:
        await migrate_stores(container)
        tokens = await resolve(container.token_store)
        for user in state.credentials():
            await tokens.save_tokens(user.user_id, user.access_token, user.refresh_token, user.expires_at)
    finally:
        await container.shutdown_resources()  # type: ignore[misc]


async def run_sandbox(args: argparse.Namespace) -> None:
    state = SandboxState.seeded(
        users=args.users,
        passes_per_user=args.passes,
        expired_per_user=args.expired,
        first_user_id=args.first_user_id,
        seed=args.seed,
    )
    config = SandboxConfig(
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        rate_429=args.rate_429,
        token_ttl_seconds=args.token_ttl,
        page_size=args.page_size,
        seed=args.seed,
    )
    sandbox = await start_sandbox(args.host, args.port, state, config)
    print(f"Bytemark sandbox listening on {sandbox.url} ({args.users} users)", flush=True)
    try:
        await _wait_for_stop_signal()
    finally:
        await sandbox.stop()


async def run_migrate(settings: Settings) -> None:
    container = build_container(settings)
    try:
        for line in await migrate_stores(container):
            print(f"migrated {line}")
    finally:
        await container.shutdown_resources()  # type: ignore[misc]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bytemark-ticket-cache", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gRPC service as configured by the environment")
    demo_cmd = commands.add_parser("demo", help="SQLite + Bytemark sandbox + gRPC on GRPC_LISTEN")
    demo_cmd.add_argument("--users", type=int, default=10, help="demo riders to seed (default 10)")
    demo_cmd.add_argument("--latency-ms", type=float, default=20.0, help="sandbox latency per call")
    sandbox_cmd = commands.add_parser("sandbox", help="the Bytemark sandbox alone")
    sandbox_cmd.add_argument("--host", default="127.0.0.1")
    sandbox_cmd.add_argument("--port", type=int, default=8089)
    sandbox_cmd.add_argument("--users", type=int, default=100)
    sandbox_cmd.add_argument("--first-user-id", type=int, default=1)
    sandbox_cmd.add_argument("--passes", type=int, default=6, help="v1 passes per user")
    sandbox_cmd.add_argument("--expired", type=int, default=3, help="EXPIRED passes per user")
    sandbox_cmd.add_argument("--latency-ms", type=float, default=0.0)
    sandbox_cmd.add_argument("--error-rate", type=float, default=0.0, help="share of calls answered 503")
    sandbox_cmd.add_argument("--rate-429", type=float, default=0.0, help="share of calls answered 429")
    sandbox_cmd.add_argument(
        "--token-ttl", type=float, default=0.0, help="access token lifetime (s); 0 = never"
    )
    sandbox_cmd.add_argument("--page-size", type=int, default=1000, help="server-side page size cap")
    sandbox_cmd.add_argument("--seed", type=int, default=0)
    commands.add_parser("migrate", help="create tables (SQLite or MySQL) and Mongo indexes, idempotently")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, settings.secret_values())
    if args.command == "serve":
        try:
            settings.require(*SERVE_REQUIRED)
        except ConfigError as exc:
            print(f"{exc}\n(`serve` needs these; `demo` runs against the embedded sandbox)", file=sys.stderr)
            return 2
    runners = {
        "serve": lambda: serve(settings),
        "demo": lambda: demo(settings, args.users, args.latency_ms),
        "sandbox": lambda: run_sandbox(args),
        "migrate": lambda: run_migrate(settings),
    }
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(runners[args.command]())
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except StoreUnavailable as exc:  # e.g. migrate cannot reach MySQL: say which store, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
