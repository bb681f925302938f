"""promtool (.tools/promtool, `make promtool`): checks and unit-tests Prometheus rules."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = ROOT / ".tools/promtool"


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL.exists(), f"{PROMTOOL} is missing: run `make promtool`"
    return subprocess.run([str(PROMTOOL), *map(str, args)], capture_output=True, text=True, timeout=120)
