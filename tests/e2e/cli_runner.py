"""Run `bytemark-ticket-cache` client commands as a user would, with a clean environment."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from devtools.harness import CLI


def client_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GRPC_AUTH_TOKEN", "TICKET_CACHE_SERVER")}
    env.update(extra)
    return env


def run_cli(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, timeout=timeout, env=client_env(**env)
    )


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]
