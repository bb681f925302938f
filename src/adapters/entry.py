"""The `bytemark-ticket-cache` console script. Client commands start without loading the server's
stack (drivers, DI container, settings: seconds of imports per call); the rest go to adapters.cli."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from adapters.operator_cli.arguments import CLIENT_COMMANDS, add_client_commands


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in CLIENT_COMMANDS:
        parser = argparse.ArgumentParser(prog="bytemark-ticket-cache")
        add_client_commands(parser.add_subparsers(dest="command", required=True))
        # Before gRPC loads: its INFO lines (each failed TLS handshake) would bury the CLI's own error.
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        from adapters.operator_cli.client_commands import run_client_command

        return run_client_command(parser.parse_args(args))
    from adapters.cli import main as server_main

    return server_main(args)


if __name__ == "__main__":
    sys.exit(main())
