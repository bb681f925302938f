"""The `bytemark-ticket-cache` console script. Client commands start without loading the server's
stack (drivers, DI container, settings: seconds of imports per call); the rest go to adapters.driving.cli."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from adapters.driving.operator_cli.arguments import (
    CLIENT_COMMANDS,
    RUN_COMMAND,
    add_client_commands,
    add_run_command,
    version_text,
)
from adapters.driving.operator_cli.shards import UsageError, shard_of


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:  # without loading the server's stack (cli.py's parser has it too)
        print(version_text())
        return 0
    if args and args[0] in CLIENT_COMMANDS:
        parser = argparse.ArgumentParser(prog="bytemark-ticket-cache")
        add_client_commands(parser.add_subparsers(dest="command", required=True))
        # Before gRPC loads: its INFO lines (each failed TLS handshake) would bury the CLI's own error.
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        from adapters.driving.operator_cli.client_commands import run_client_command

        return run_client_command(parser.parse_args(args))
    if args and args[0] == RUN_COMMAND and (problem := _shard_problem(args)):
        print(f"usage error: {problem}", file=sys.stderr)
        return 2
    from adapters.driving.cli import main as server_main

    return server_main(args)


def _shard_problem(args: list[str]) -> str | None:
    """A `run refresh-stale` shard mistake, found without loading the server's stack."""
    parser = argparse.ArgumentParser(prog="bytemark-ticket-cache")
    add_run_command(parser.add_subparsers(dest="command", required=True))
    parsed, _ = parser.parse_known_args(args)
    if getattr(parsed, "job", None) != "refresh-stale":
        return None
    try:
        shard_of(parsed)
    except UsageError as exc:
        return str(exc)
    return None


if __name__ == "__main__":
    sys.exit(main())
