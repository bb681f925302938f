"""Client commands: call a running server through the Python client package and print the answer.

Exit codes: operator_cli.exit_codes (0 ok, 1 riders or the call failed, 2 usage or unreachable,
3 NOT_FOUND, 4 UNAUTHENTICATED/PERMISSION_DENIED, 5 UNAVAILABLE, 130 interrupted).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import grpc

from adapters.driving.operator_cli.exit_codes import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    exit_code_for,
)
from adapters.driving.operator_cli.output import Output, choose_output
from adapters.driving.operator_cli.streams import show_stream
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from ticket_cache_client import ServerUnreachable, TicketCacheClient, TlsFiles, per_rider

STATE_BY_NAME = {
    "ok": pb.SYNC_STATE_OK,
    "failing": pb.SYNC_STATE_FAILING,
    "auth-required": pb.SYNC_STATE_AUTH_REQUIRED,
}
VIEW_BY_NAME = {"summary": pb.CACHE_VIEW_SUMMARY, "full": pb.CACHE_VIEW_FULL, "raw": pb.CACHE_VIEW_RAW}
#: How long to wait for a connection before calling the server unreachable.
CONNECT_SECONDS = 10.0


def _tls(args: argparse.Namespace) -> TlsFiles | None:
    if not (args.tls_ca or args.tls_cert or args.tls_key):
        return None
    return TlsFiles(ca=_path(args.tls_ca), cert=_path(args.tls_cert), key=_path(args.tls_key))


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _client(args: argparse.Namespace) -> TicketCacheClient:
    timeouts = {} if args.timeout is None else {"timeout": args.timeout, "stream_timeout": args.timeout}
    return TicketCacheClient(args.server, token=args.token, tls=_tls(args), **timeouts)


async def _call(args: argparse.Namespace, client: TicketCacheClient, output: Output) -> int:
    command = args.command
    if command == "get":
        output.cache(await client.get(args.user_id, view=VIEW_BY_NAME[args.view]))
    elif command == "check":
        output.result(await client.check(args.user_id, dry_run=args.dry_run))
    elif command in ("build", "update"):
        output.result(await getattr(client, command)(args.user_id))
    elif command == "timeout-check":
        output.result(await client.check_timeout(args.user_id, max_age_seconds=args.max_age))
    elif command == "purge-orphans":
        output.purged(await client.purge_orphans(dry_run=args.dry_run))
    elif command == "sync-status" and args.user_id is not None:
        output.sync_statuses([await client.sync_status(args.user_id)])
    elif command == "sync-status":
        output.sync_statuses(
            [status async for status in client.sync_statuses(state=STATE_BY_NAME[args.state])]
        )
    elif command == "watch":
        await _watch(args, client, output)
    elif command == "bootstrap":
        built = client.bootstrap(concurrency=args.concurrency, max_batch=args.max_batch)
        return await show_stream(output, command, per_rider(built))
    elif command == "refresh-stale":
        index, count = args.shard or (0, 0)
        events = client.refresh_stale(
            max_age_seconds=args.max_age,
            concurrency=args.concurrency,
            shard_index=index,
            shard_count=count,
            user_ids=args.user_ids,
            max_batch=args.max_batch,
            dry_run=args.dry_run,
        )
        return await show_stream(output, command, per_rider(events))
    return EXIT_OK


async def _watch(args: argparse.Namespace, client: TicketCacheClient, output: Output) -> None:
    """Print every change as it comes; on Ctrl-C say which cursor resumes the feed."""
    cursor = args.cursor
    try:
        async for batch in client.watch(cursor=args.cursor, user_ids=args.user_ids):
            for event in batch.events:
                output.change(event)
            cursor = batch.cursor or cursor
    except asyncio.CancelledError:
        print(f"watch stopped; resume with --cursor {cursor}" if cursor else "watch stopped", file=sys.stderr)
        raise


async def _run(args: argparse.Namespace) -> int:
    output = choose_output(args.json)
    async with _client(args) as client:
        await client.wait_ready(min(CONNECT_SECONDS, args.timeout or CONNECT_SECONDS))
        return await _call(args, client, output)


def _unreachable(exc: ServerUnreachable, args: argparse.Namespace) -> str:
    """gRPC's reason, led by what to fix when it is a TLS problem the flags can cause."""
    if "CERTIFICATE_VERIFY_FAILED" in exc.reason:
        trusted_by = f"the CA in --tls-ca {args.tls_ca}" if args.tls_ca else "the system's CA certificates"
        return f"TLS: the certificate of {exc.target} is not trusted by {trusted_by} ({exc.reason})"
    return f"server unreachable: {exc}"


def run_client_command(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:  # asyncio.run cancelled the call; the stream view said how far it got
        return EXIT_INTERRUPTED
    except ServerUnreachable as exc:
        print(_unreachable(exc, args), file=sys.stderr)
        return EXIT_USAGE
    except grpc.aio.AioRpcError as error:
        print(f"{error.code().name}: {error.details()}", file=sys.stderr)
        return exit_code_for(error.code().name)
    except (OSError, ValueError) as exc:  # unreadable TLS files, cert without key
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
