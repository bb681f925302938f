"""Keeps docs/calling.md true: its CLI lines, its Python example and its Node example run against a
real `bytemark-ticket-cache demo` process."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.harness import CLI
from tests.e2e.cli_runner import client_env
from tests.e2e.demo_process import running_demo
from tests.e2e.test_demo_readme import README_ADDRESS

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "calling.md"
SECTION = PAGE.read_text()


def block(language: str) -> str:
    found = re.findall(rf"```{language}\n(.*?)```", SECTION, re.DOTALL)
    assert len(found) == 1, f"expected one ```{language} block in {PAGE.name}"
    return str(found[0])


def cli_lines() -> list[tuple[list[str], int]]:
    """(argv after the program, the exit code the page promises: `# exit N` or 0)."""
    lines = []
    for line in block("sh").splitlines():
        if line.startswith("$B "):
            promised = re.search(r"#\s*exit (\d+)", line)
            lines.append((shlex.split(line, comments=True)[1:], int(promised.group(1)) if promised else 0))
    return lines


@pytest.fixture(scope="module")
def demo_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_demo(tmp_path_factory.mktemp("calling")) as demo:
        yield demo.address


def test_the_section_shows_every_client_command() -> None:
    shown = {argv[0] for argv, _ in cli_lines()}
    assert {
        "check",
        "get",
        "timeout-check",
        "refresh-stale",
        "bootstrap",
        "purge-orphans",
        "sync-status",
    } <= shown


CLI_LINES = cli_lines()


@pytest.mark.parametrize(("argv", "promised"), CLI_LINES, ids=[" ".join(argv) for argv, _ in CLI_LINES])
def test_each_cli_line_exits_as_the_readme_says(demo_address: str, argv: list[str], promised: int) -> None:
    env = client_env(TICKET_CACHE_SERVER=demo_address)
    done = subprocess.run([CLI, *argv], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == promised, f"{argv}: {done.stderr}"


def test_the_python_example_runs(demo_address: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(block("python").replace(README_ADDRESS, demo_address))
    done = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert re.match(r"OUTCOME_\w+ \d+\n\d+ passes\n1/2\n2/2\n$", done.stdout), done.stdout


def test_the_node_example_runs(demo_address: str, tmp_path: Path) -> None:
    package = ROOT / "clients" / "typescript"
    assert (package / "dist" / "index.js").exists(), "build it first: make typescript"
    # As a Node service would have it: the package installed under node_modules.
    (tmp_path / "node_modules" / "@bytemark").mkdir(parents=True)
    (tmp_path / "node_modules" / "@bytemark" / "ticket-cache-client").symlink_to(package)
    script = tmp_path / "example.mjs"
    script.write_text(block("js").replace(README_ADDRESS, demo_address))
    done = subprocess.run(["node", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.match(r"\d \d+\n\d+ passes\n1/2\n2/2\n$", done.stdout), done.stdout
