"""Keeps docs/http-json.md true: every command of its "Try it against `make run`" block runs as
printed against a real `bytemark-ticket-cache demo` process (its HTTP port in place of 8080)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.demo_process import Demo, running_demo
from tests.e2e.http_calls import unframe

PAGE = Path(__file__).resolve().parents[2] / "docs" / "http-json.md"
DOCS_HTTP_ADDRESS = "127.0.0.1:8080"  # the demo's default HTTP_LISTEN, as the page prints it


def documented_commands() -> list[str]:
    section = PAGE.read_text().split("## Try it against `make run`", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, "docs/http-json.md has no ```sh block under 'Try it against `make run`'"
    return [line for line in block.group(1).splitlines() if line.strip()]


COMMANDS = documented_commands()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with running_demo(tmp_path_factory.mktemp("http-docs")) as running:
        yield running


def http_address(demo: Demo) -> str:
    found = re.search(r"HTTP \(Connect, gRPC-Web, JSON\) listening on (\S+)", demo.text())
    assert found, demo.text()
    return found.group(1)


def test_the_page_shows_a_unary_read_an_error_and_a_stream() -> None:
    assert any("/GetTicketCache" in line and "application/json" in line for line in COMMANDS)
    assert any("# 400 invalid_argument" in line for line in COMMANDS)
    assert any("application/connect+json" in line and "/RefreshStaleCaches" in line for line in COMMANDS)
    assert all(DOCS_HTTP_ADDRESS in line for line in COMMANDS)


def test_the_demo_prints_a_curl_line_for_its_http_port(demo: Demo) -> None:
    assert (
        f"http://{http_address(demo)}/bytemark.ticketcache.v1.TicketCacheService/GetTicketCache"
        in demo.text()
    )


def run(command: str, demo: Demo) -> bytes:
    line = command.replace(DOCS_HTTP_ADDRESS, http_address(demo))
    done = subprocess.run(["bash", "-o", "pipefail", "-c", line], capture_output=True, timeout=60)
    assert done.returncode == 0, f"{command}\n{done.stderr.decode(errors='replace')}"
    return done.stdout


def test_each_documented_command_answers_as_the_page_says(demo: Demo) -> None:
    """In order: the first builds rider 1001's cache, which the reads after it need."""
    for command in COMMANDS:
        out = run(command, demo)
        if "# 400 invalid_argument" in command:
            head, _, body = out.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400"), out
            assert json.loads(body)["code"] == "invalid_argument"
        elif "connect+json" in command:
            *events, (end_flags, end) = unframe(out)
            assert (end_flags, end) == (2, {})
            assert sorted(event["userId"] for _, event in events) == ["1001", "1002"]
        else:
            answer = json.loads(out)
            assert "code" not in answer, answer
            if "/CheckTicketCache" in command:
                assert answer["result"]["outcome"] == "OUTCOME_BUILT"
            if "/GetTicketCache" in command:
                assert answer["cache"]["userId"] == "1001" and answer["cache"]["passes"]
