"""The picture of bench/scale.py's BENCH line: server CPU per rider and peak RSS against riders.

.venv/bin/python bench/scale.py | tee /tmp/scale.txt
.venv/bin/python bench/plot_scale.py /tmp/scale.txt          # -> docs/img/scale.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen

ROOT = Path(__file__).resolve().parent.parent


def scale_record(text: str) -> dict[str, Any]:
    """The last `BENCH {...}` line named "scale" in `text`."""
    records = [json.loads(line[len("BENCH ") :]) for line in text.splitlines() if line.startswith("BENCH ")]
    found = [record for record in records if record.get("name") == "scale"]
    if not found:
        raise SystemExit("no BENCH line named scale in the input")
    return found[-1]


def plot(record: dict[str, Any], out: Path) -> None:
    sizes = record["sizes"]
    riders = [row["users"] for row in sizes]
    figure, (cpu, rss) = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    cpu.plot(riders, [row["cpu_ms_per_rider"] for row in sizes], marker="o")
    cpu.set(xscale="log", xlabel="riders", ylabel="ms", title="server CPU per rider (refresh-stale)")
    cpu.set_ylim(bottom=0)
    rss.plot(riders, [row["peak_rss_mb"] for row in sizes], marker="o", color="tab:orange")
    rss.axhline(150, linestyle="--", color="grey", label="target 150 MB")
    rss.set(xscale="log", xlabel="riders", ylabel="MB", title="server peak RSS")
    rss.set_ylim(bottom=0)
    rss.legend(loc="lower right")
    figure.suptitle(
        f"tokens in {record['tokens_store']}, caches in SQLite, sandbox {record['latency_ms']:g} ms"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bench_output", type=Path, help="a file holding bench/scale.py's BENCH line")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "scale.png")
    args = parser.parse_args()
    plot(scale_record(args.bench_output.read_text()), args.out)
    print(args.out)


if __name__ == "__main__":
    main()
