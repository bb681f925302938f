"""Run one folder of the Node client's node:test files against servers these tests started."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

NODE_CLIENT = Path(__file__).resolve().parents[2] / "clients" / "typescript"


def assert_node_suite_passes(folder: str, env: Mapping[str, str], passes: int, timeout: float) -> None:
    """Every test in `folder` (e.g. "test/") passes, and there are `passes` of them: a file that
    stopped registering its tests must not pass as an empty run."""
    assert (NODE_CLIENT / "dist" / "index.js").exists(), "build it first: make typescript"
    done = subprocess.run(
        ["node", "--test", "--test-reporter=spec", folder],
        cwd=NODE_CLIENT, capture_output=True, text=True, timeout=timeout, env={**os.environ, **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"pass {passes}" in done.stdout and "fail 0" in done.stdout
