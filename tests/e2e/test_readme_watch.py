"""Keeps the grpcurl watch-and-resume example of docs/change-feed.md true: its block, run as printed by bash
against a real `bytemark-ticket-cache demo` process, watches for a while (printing events and a
cursor), then resumes from that cursor and prints only the changes made after it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from devtools.harness import GRPCURL
from tests.e2e.demo_process import running_demo
from tests.e2e.test_demo_readme import README_ADDRESS
from tests.e2e.test_grpcurl import json_objects

PAGE = Path(__file__).resolve().parents[2] / "docs" / "change-feed.md"
SECTION = PAGE.read_text().split("## Watch and resume with grpcurl", 1)[1].split("\n## ", 1)[0]


def readme_block() -> str:
    found = re.findall(r"```sh\n(.*?)```", SECTION, re.DOTALL)
    assert len(found) == 1, f"expected one ```sh block under 'Watch and resume with grpcurl' in {PAGE.name}"
    block = str(found[0])
    assert block.startswith("G=.venv/bin/grpcurl\n"), block
    return block.replace("G=.venv/bin/grpcurl", f"G={GRPCURL}", 1).replace(README_ADDRESS, "{address}")


def events_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for message in messages for event in message.get("events", [])]


def test_the_readme_watch_then_resume_prints_each_change_once_on_the_right_side_of_the_cursor(
    tmp_path: Path,
) -> None:
    with running_demo(tmp_path) as demo:
        script = readme_block().replace("{address}", demo.address)
        done = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=90
        )

    watched = json_objects((tmp_path / "watch.json").read_text())
    printed = json_objects(done.stdout)
    assert printed[: len(watched)] == watched, "the block prints watch.json first"
    resumed = printed[len(watched) :]

    # the watch: a first message with the cursor only, then rider 1009's passes as they were added
    assert watched[0].get("cursor") and not watched[0].get("events"), watched[0]
    assert {(e["user_id"], e["kind"]) for e in events_of(watched)} == {("1009", "CHANGE_KIND_ADDED")}
    # the resume: what happened after the last cursor received, and nothing before it
    assert resumed and all(message.get("cursor") for message in resumed)
    assert {(e["user_id"], e["kind"]) for e in events_of(resumed)} == {("1010", "CHANGE_KIND_ADDED")}
    assert len(events_of(resumed)) == len(events_of(watched))  # both riders hold as many passes
    # -max-time ended both watches, as the page says
    assert done.stderr.count("Code: DeadlineExceeded") == 2, done.stderr
