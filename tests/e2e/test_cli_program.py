"""The console script itself: --version, the exit codes in --help and docs/cli.md, and shell
completion scripts for bash (run by bash as it completes a word) and zsh."""

from __future__ import annotations

import subprocess
from importlib.metadata import version
from pathlib import Path

from adapters.driving.operator_cli.exit_codes import EXIT_CODES
from tests.e2e.cli_runner import run_cli

ROOT = Path(__file__).resolve().parents[2]


def test_version_prints_the_installed_version() -> None:
    done = run_cli("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"bytemark-ticket-cache {version('bytemark-ticket-cache')}"


def test_help_and_docs_list_every_exit_code() -> None:
    top, command = run_cli("--help"), run_cli("get", "--help")
    page = (ROOT / "docs" / "cli.md").read_text()
    for code, meaning in EXIT_CODES:
        assert f"  {code:<5}{meaning}" in top.stdout
        assert f"  {code:<5}{meaning}" in command.stdout
        assert f"| {code} | {meaning} |" in page


def bash_completes(script: str, *words: str) -> list[str]:
    """What bash offers for the last of `words`, with the completion script loaded."""
    line = " ".join(["bytemark-ticket-cache", *words])
    program = (
        f"source /dev/stdin; COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}; "
        f"COMP_WORDS=(bytemark-ticket-cache {' '.join(words)}); COMP_CWORD={len(words)}; "
        "_shtab_bytemark_ticket_cache; printf '%s\\n' \"${COMPREPLY[@]}\""
    )
    done = subprocess.run(["bash", "-c", program], input=script, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completion_completes_commands_and_their_flags() -> None:
    script = run_cli("--print-completion", "bash")
    assert script.returncode == 0, script.stderr
    assert bash_completes(script.stdout, "refresh-s") == ["refresh-stale"]
    assert bash_completes(script.stdout, "get", "--vi") == ["--view"]
    assert bash_completes(script.stdout, "sync-status", "--state", "") == ["ok", "failing", "auth-required"]


def test_zsh_completion_is_a_compdef_for_every_command() -> None:
    script = run_cli("--print-completion", "zsh")
    assert script.returncode == 0, script.stderr
    assert script.stdout.startswith("#compdef bytemark-ticket-cache")
    for command in ("get", "check", "refresh-stale", "sync-status", "watch", "run", "serve"):
        assert f"\n    {command}:'" in script.stdout, command
