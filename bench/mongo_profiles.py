"""The Mongo benchmarks (bootstrap_mongo, read_mongo, change_feed on FerretDB) once per server
profile, printed side by side: `ferretdb` (the workarounds FerretDB v1 needs) and `mongodb` (what
a real MongoDB gets), both against FerretDB v1 here. On FerretDB the `mongodb` profile pays
FerretDB's scans (it asks by user_id and ranges): the comparison shows what each workaround buys
on FerretDB, and so what a real MongoDB no longer pays for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROFILES = ("ferretdb", "mongodb")
RUNS = (("mongo.py",), ("change_feed.py", "--ferretdb"))
FIGURES = {
    "bootstrap_mongo": ("users_per_s", "server_cpu_ms_per_user"),
    "read_mongo": ("qps", "server_cpu_ms_per_read", "ferretdb_cpu_ms_per_read"),
    "change_feed_mongo": ("latency_p50_ms", "latency_p99_ms"),
}


def run(profile: str, arguments: list[str]) -> dict[str, dict[str, object]]:
    results = {}
    for script, *flags in RUNS:
        env = {**os.environ, "MONGODB_PROFILE": profile}
        command = [sys.executable, str(HERE / script), *flags, *arguments]
        done = subprocess.run(command, env=env, check=True, stdout=subprocess.PIPE)
        for line in done.stdout.decode().splitlines():
            if line.startswith("BENCH "):
                figures = json.loads(line[len("BENCH ") :])
                results[str(figures["name"])] = figures
    return results


def main() -> None:
    by_profile = {profile: run(profile, sys.argv[1:]) for profile in PROFILES}
    print(f"{'benchmark':<20}{'figure':<28}" + "".join(f"{profile:>14}" for profile in PROFILES))
    for name, keys in FIGURES.items():
        for key in keys:
            values = [by_profile[profile].get(name, {}).get(key, "-") for profile in PROFILES]
            print(f"{name:<20}{key:<28}" + "".join(f"{value!s:>14}" for value in values))


if __name__ == "__main__":
    main()
