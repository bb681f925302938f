"""The `demo` and `sandbox` commands, plugged into `bytemark-ticket-cache` by entry points."""

from __future__ import annotations

import argparse
import os

from pydantic import SecretStr

from adapters.composition.container import build_container, migrate_stores, resolve
from adapters.composition.settings import Settings
from adapters.driving.cli import serve, wait_for_stop_signal
from devtools.sandbox.config import SandboxConfig
from devtools.sandbox.server import start_sandbox
from devtools.sandbox.state import SandboxState

DEMO_FIRST_USER_ID = 1001
DEMO_SQLITE_PATH = "var/demo.sqlite3"
#: The HTTP port of `make run` unless HTTP_LISTEN says otherwise: docs/http-json.md's curl lines use it.
DEMO_HTTP_LISTEN = "127.0.0.1:8080"


class DemoCommand:
    help = "SQLite + Bytemark sandbox + gRPC on GRPC_LISTEN + HTTP on HTTP_LISTEN (default 127.0.0.1:8080)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--users", type=int, default=10, help="demo riders to seed (default 10)")
        parser.add_argument("--latency-ms", type=float, default=20.0, help="sandbox latency per call")

    async def run(self, args: argparse.Namespace, settings: Settings) -> None:
        await demo(settings, args.users, args.latency_ms)


class SandboxCommand:
    help = "the Bytemark sandbox alone"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8089)
        parser.add_argument("--users", type=int, default=100)
        parser.add_argument("--first-user-id", type=int, default=1)
        parser.add_argument("--passes", type=int, default=6, help="v1 passes per user")
        parser.add_argument("--expired", type=int, default=3, help="EXPIRED passes per user")
        parser.add_argument("--latency-ms", type=float, default=0.0)
        parser.add_argument("--error-rate", type=float, default=0.0, help="share of calls answered 503")
        parser.add_argument("--rate-429", type=float, default=0.0, help="share of calls answered 429")
        parser.add_argument(
            "--token-ttl", type=float, default=0.0, help="access token lifetime (s); 0 = never"
        )
        parser.add_argument("--page-size", type=int, default=1000, help="server-side page size cap")
        parser.add_argument("--seed", type=int, default=0)

    async def run(self, args: argparse.Namespace, settings: Settings) -> None:
        await run_sandbox(args)


DEMO = DemoCommand()
SANDBOX = SandboxCommand()


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
                "http_listen": settings.http_listen or DEMO_HTTP_LISTEN,
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
                "bytemark.ticketcache.v1.TicketCacheService/CheckTicketCache\n  curl -H 'Content-Type: "
                f"application/json' -d '{{\"user_id\": {DEMO_FIRST_USER_ID}}}' "
                f"http://{demo_settings.http_listen}/bytemark.ticketcache.v1.TicketCacheService/GetTicketCache"
            ),
        )
    finally:
        await sandbox.stop()


async def _seed_demo_tokens(settings: Settings, state: SandboxState) -> None:
    """Give every demo rider the sandbox's current tokens (fresh each start: the sandbox is new)."""
    container = build_container(settings)
    try:
        await migrate_stores(container)
        tokens = await resolve(container.token_stores.token_store)
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
        await wait_for_stop_signal()
    finally:
        await sandbox.stop()
