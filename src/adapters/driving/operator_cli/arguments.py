"""The operator commands' command line: client commands and `run` jobs."""

from __future__ import annotations

import argparse
import os
from importlib.metadata import version

import shtab

from adapters.driving.operator_cli.exit_codes import exit_codes_help

CLIENT_COMMANDS = (
    "get",
    "check",
    "build",
    "update",
    "timeout-check",
    "bootstrap",
    "refresh-stale",
    "purge-orphans",
    "sync-status",
    "watch",
)
RUN_COMMAND = "run"
VIEWS = ("summary", "full", "raw")
SYNC_STATES = ("ok", "failing", "auth-required")
#: Bulk streams' `max_batch`: the proto's bound, and what the CLI asks for (the bench's setting).
MAX_BATCH, DEFAULT_MAX_BATCH = 1000, 64


PROGRAM = "bytemark-ticket-cache"


def version_text() -> str:
    return f"{PROGRAM} {version(PROGRAM)}"


def add_program_flags(parser: argparse.ArgumentParser) -> None:
    """--version, --print-completion SHELL (shtab: bash, zsh, ...) and the exit codes in --help."""
    parser.add_argument("--version", action="version", version=version_text())
    shtab.add_argument_to(
        parser,
        "--print-completion",
        help="print the completion script for SHELL (bash or zsh; see docs/cli.md)",
    )
    parser.epilog = exit_codes_help()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def batch_size(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_BATCH}, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def shard(text: str) -> tuple[int, int]:
    """`I/N`: shard I of N, 0 <= I < N."""
    index, slash, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N such as 0/4, got {text!r}") from None
    if not slash or n < 1 or not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, got {text!r}")
    return i, n


def _output_flags() -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per line (also whenever stdout is not a terminal)",
    )
    return flags


def _connection_flags() -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False, parents=[_output_flags()])
    group = flags.add_argument_group("connection")
    group.add_argument(
        "--server",
        default=os.environ.get("TICKET_CACHE_SERVER") or "127.0.0.1:50051",
        help="host:port, or a gRPC target such as ipv4:10.0.0.1:50051,10.0.0.2:50051 "
        "(default $TICKET_CACHE_SERVER, else 127.0.0.1:50051)",
    )
    group.add_argument(
        "--token",
        default=os.environ.get("GRPC_AUTH_TOKEN") or None,
        help="bearer token (default $GRPC_AUTH_TOKEN)",
    )
    group.add_argument(
        "--tls-ca", metavar="PEM", help="CA that signed the server's certificate (enables TLS)"
    )
    group.add_argument("--tls-cert", metavar="PEM", help="client certificate for mutual TLS")
    group.add_argument("--tls-key", metavar="PEM", help="client private key for mutual TLS")
    group.add_argument(
        "--timeout",
        type=positive_float,
        metavar="SECONDS",
        help="deadline of the call (default 30 s; streams 6 h)",
    )
    return flags


def add_client_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parent = [_connection_flags()]

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help,
            parents=parent,
            epilog=exit_codes_help(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    get = command("get", "show a rider's cached passes (no Bytemark call)")
    get.add_argument("user_id", type=positive_int, metavar="USER")
    get.add_argument(
        "--view", choices=VIEWS, default="full", help="payloads as Struct (full), JSON text (raw), or none"
    )
    for name, help in (
        ("check", "update the rider's cache, or build it when missing"),
        ("build", "build the rider's cache afresh"),
        ("update", "update the rider's existing cache"),
    ):
        refresh_one = command(name, help)
        refresh_one.add_argument("user_id", type=positive_int, metavar="USER")
        if name == "check":
            refresh_one.add_argument("--dry-run", action="store_true", help=_DRY_RUN_HELP)
    timeout_check = command("timeout-check", "refresh the rider's cache only when older than the max age")
    timeout_check.add_argument("user_id", type=positive_int, metavar="USER")
    timeout_check.add_argument("--max-age", type=non_negative_int, default=0, metavar="S", help="seconds")
    bootstrap = command("bootstrap", "build every rider's cache when the cache store is empty")
    bootstrap.add_argument("--concurrency", type=positive_int, default=0, metavar="N")
    _add_max_batch(bootstrap)
    refresh = command("refresh-stale", "refresh the caches older than the max age, with progress")
    refresh.add_argument("--max-age", type=non_negative_int, default=0, metavar="S", help="seconds")
    refresh.add_argument("--shard", type=shard, metavar="I/N", help="only riders with user_id %% N == I")
    refresh.add_argument(
        "--user", dest="user_ids", type=positive_int, nargs="+", action="extend", default=[], metavar="ID"
    )
    refresh.add_argument("--concurrency", type=positive_int, default=0, metavar="N")
    refresh.add_argument("--dry-run", action="store_true", help=_DRY_RUN_HELP)
    _add_max_batch(refresh)
    purge = command("purge-orphans", "remove the caches of riders who no longer have a token")
    purge.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    sync = command("sync-status", "how a rider's refreshes stand, or every rider in a state")
    which = sync.add_mutually_exclusive_group(required=True)
    which.add_argument("user_id", type=positive_int, nargs="?", metavar="USER")
    which.add_argument("--state", choices=SYNC_STATES, help="list every rider in this state")
    watch = command("watch", "follow the change feed (pass added, changed, removed) until Ctrl-C")
    watch.add_argument("--cursor", default="", help="resume after this cursor (default: from now)")
    watch.add_argument(
        "--user", dest="user_ids", type=positive_int, nargs="+", action="extend", default=[], metavar="ID"
    )


_DRY_RUN_HELP = (
    "report what a refresh would add, change and remove (and stored hashes this service computes"
    " otherwise); write nothing but a token Bytemark rotates meanwhile"
)


def _add_max_batch(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-batch",
        type=batch_size,
        default=DEFAULT_MAX_BATCH,
        metavar="N",
        help=f"riders already finished share one stream message, up to N (default {DEFAULT_MAX_BATCH}; "
        "0: one message per rider); output stays one line per rider",
    )


def add_run_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="run a bulk job in this process (no server), e.g. from a CronJob")
    jobs = run.add_subparsers(dest="job", required=True)
    parent = [_output_flags()]
    refresh = jobs.add_parser(
        "refresh-stale", help="refresh the caches older than the max age", parents=parent
    )
    refresh.add_argument("--max-age", type=non_negative_int, default=0, metavar="S", help="seconds")
    refresh.add_argument(
        "--shard-index", type=non_negative_int, metavar="I", help="this shard (default $JOB_COMPLETION_INDEX)"
    )
    refresh.add_argument("--shard-count", type=positive_int, metavar="N", help="number of shards")
    refresh.add_argument("--concurrency", type=positive_int, default=0, metavar="N")
    refresh.add_argument("--dry-run", action="store_true", help=_DRY_RUN_HELP)
    bootstrap = jobs.add_parser(
        "bootstrap", help="build every rider's cache when the store is empty", parents=parent
    )
    bootstrap.add_argument("--concurrency", type=positive_int, default=0, metavar="N")
