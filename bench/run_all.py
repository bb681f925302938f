"""`make bench`: every benchmark against the project's own sandbox on loopback.

One `BENCH {json}` line per benchmark on stdout, progress on stderr. Each benchmark runs in
its own interpreter so one's heap and threads do not colour the next one's numbers.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    "diff.py",
    "read.py",
    "http_read.py",
    "tracing.py",
    "bootstrap.py",
    "change_feed.py",
    "sync_state_cost.py",
    "memory.py",
    "mongo.py",
    "freshness.py",
    "grpc_metrics.py",
    "scale.py",
)


def main() -> int:
    started = time.monotonic()
    failures = []
    for script in BENCHMARKS:
        print(f"[bench] running {script}", file=sys.stderr, flush=True)
        # stdout passes through (the BENCH lines), stderr too (progress).
        result = subprocess.run([sys.executable, str(HERE / script), *sys.argv[1:]], check=False)
        if result.returncode != 0:
            failures.append(script)
    print(f"[bench] all done in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    if failures:
        print(f"[bench] failed: {', '.join(failures)}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
