"""Keeps the README true: the real `bytemark-ticket-cache demo` process answers every grpcurl
command of the README's "Try it with grpcurl" block, and stops cleanly on SIGTERM."""

from __future__ import annotations

import re
import shlex
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.harness import CLI, GRPCURL
from tests.e2e.demo_process import Demo, demo_env, running_demo

README = Path(__file__).resolve().parents[2] / "README.md"
README_ADDRESS = "127.0.0.1:50051"


@dataclass(frozen=True)
class ReadmeCommand:
    line: str
    expected_error: str | None  # e.g. "INVALID_ARGUMENT" when the README says the call fails
    named_field: str | None  # the field the README says the error names

    def argv(self, address: str) -> list[str]:
        words = shlex.split(self.line, comments=True)
        assert words[0] == "$G", self.line
        return [GRPCURL, *(w.replace(README_ADDRESS, address) for w in words[1:])]


def readme_commands() -> list[ReadmeCommand]:
    """The `$G ...` lines of the code block under "## Try it with grpcurl", in order."""
    section = README.read_text().split("## Try it with grpcurl", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, "README has no ```sh block under 'Try it with grpcurl'"
    commands = []
    for line in block.group(1).splitlines():
        if not line.startswith("$G "):
            continue
        trailing = re.search(r"\s#(.*)$", line)  # e.g. "# INVALID_ARGUMENT naming user_id"
        comment = trailing.group(1) if trailing else ""
        error = re.search(r"\b([A-Z][A-Z_]+[A-Z])\b", comment)
        field = re.search(r"naming (\w+)", comment)
        commands.append(
            ReadmeCommand(line, error.group(1) if error else None, field.group(1) if field else None)
        )
    return commands


COMMANDS = readme_commands()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with running_demo(tmp_path_factory.mktemp("demo")) as running:
        yield running


def test_the_readme_documents_the_grpcurl_tour() -> None:
    assert len(COMMANDS) >= 10
    assert [c.expected_error for c in COMMANDS if c.expected_error] == ["INVALID_ARGUMENT"]


@pytest.mark.parametrize("command", COMMANDS, ids=[f"{i:02d}" for i in range(1, len(COMMANDS) + 1)])
def test_each_readme_grpcurl_command_works_against_the_demo(demo: Demo, command: ReadmeCommand) -> None:
    done = subprocess.run(command.argv(demo.address), capture_output=True, text=True, timeout=30)

    if command.expected_error is None:
        assert done.returncode == 0, f"{command.line}\n{done.stderr}"
        assert done.stdout.strip()
    else:
        code_name = "".join(part.title() for part in command.expected_error.split("_"))  # InvalidArgument
        assert done.returncode != 0, command.line
        assert f"Code: {code_name}" in done.stderr, done.stderr
        assert command.named_field is None or f"Message: {command.named_field}" in done.stderr, done.stderr


def test_the_demo_stops_cleanly_on_sigterm(demo: Demo) -> None:
    demo.proc.send_signal(signal.SIGTERM)

    assert demo.proc.wait(timeout=10) == 0, demo.text()
    assert "Traceback" not in demo.text()


def test_a_demo_on_a_busy_port_says_so_and_exits_with_an_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        done = subprocess.run(
            [CLI, "demo"],
            env=demo_env(address, tmp_path),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert done.returncode == 1
    assert f"error: cannot serve gRPC on {address} (GRPC_LISTEN" in done.stderr
    assert "Traceback" not in done.stderr
