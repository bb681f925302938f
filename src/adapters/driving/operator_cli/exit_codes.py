"""The operator commands' exit codes: one table, shown in `--help` and in docs/cli.md (a test
checks the page lists each), so a script can tell what happened without reading stderr.
Status codes by name: the console script sets gRPC's log level before grpc is first imported."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_DENIED = 4
EXIT_UNAVAILABLE = 5
EXIT_INTERRUPTED = 130

#: (exit code, what it means), in the order `--help` lists them.
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "ok"),
    (EXIT_FAILED, "some riders failed, or the call failed otherwise (printed as CODE: message)"),
    (EXIT_USAGE, "usage error, or the server is unreachable (TLS problems included)"),
    (EXIT_NOT_FOUND, "NOT_FOUND: no cache, or no sync status, for that rider"),
    (EXIT_DENIED, "UNAUTHENTICATED or PERMISSION_DENIED: missing, wrong or insufficient token"),
    (EXIT_UNAVAILABLE, "UNAVAILABLE: Bytemark or a store is down, or the server is shutting down; retry"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C); a stream says how far it got"),
)

_EXIT_BY_STATUS = {
    "NOT_FOUND": EXIT_NOT_FOUND,
    "UNAUTHENTICATED": EXIT_DENIED,
    "PERMISSION_DENIED": EXIT_DENIED,
    "UNAVAILABLE": EXIT_UNAVAILABLE,
}


def exit_code_for(status_name: str) -> int:
    """The exit code of a command whose call (or in-process job) failed with the status code
    named `status_name` (e.g. "NOT_FOUND")."""
    return _EXIT_BY_STATUS.get(status_name, EXIT_FAILED)


def exit_codes_help() -> str:
    """The table as `--help` shows it (an argparse epilog, printed as is)."""
    return "exit codes:\n" + "\n".join(f"  {code:<5}{meaning}" for code, meaning in EXIT_CODES)
