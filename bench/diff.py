"""One update diff of a user with 10,000 passes versus only serialising and hashing them.

The fresh lists hold the same 10,000 payloads as freshly parsed objects (as Bytemark's JSON
would give them) with 1% changed and 1% new; the baseline is `payload_hash` over the same
10,000 payloads, the irreducible work (each payload serialised the JS way and hashed once).
"""

from __future__ import annotations

import argparse
import copy
import gc
import time

from common import emit, log

from devtools.sandbox.passes import generate_user_passes
from domain.cache_diff import build_cache, update_cache
from domain.free_tickets import FreeTicketPolicy
from domain.model import FetchedPasses
from domain.payload_hash import payload_hash


def _best(seconds: list[float]) -> float:
    return min(seconds)


def run(passes: int, repeats: int) -> dict[str, object]:
    expired = passes // 5
    generated = generate_user_passes(11, 1, passes - expired, expired)
    v1 = [p for p in generated if p["status"] != "EXPIRED"]
    v4 = [p for p in generated if p["status"] == "EXPIRED"]
    old = build_cache(1, FetchedPasses(v1=v1, v4_expired=v4), now=1_000)
    fresh_v1, fresh_v4 = copy.deepcopy(v1), copy.deepcopy(v4)
    for payload in fresh_v1[::100]:  # 1% changed
        payload["status"] = "ACTIVE" if payload["status"] != "ACTIVE" else "USABLE"
    for index, payload in enumerate(fresh_v1[1::100]):  # 1% replaced by new passes
        payload["uuid"] = f"00000000-0000-4000-8000-{index:012d}"
    fetched = FetchedPasses(v1=fresh_v1, v4_expired=fresh_v4)
    all_payloads = fresh_v1 + fresh_v4
    policy = FreeTicketPolicy()
    log(f"diff: {len(all_payloads)} payloads, best of {repeats}")

    diff_times, hash_times = [], []
    gc.collect()
    for _ in range(repeats):
        started = time.perf_counter()
        for payload in all_payloads:
            payload_hash(payload)
        hash_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        update = update_cache(old, fetched, now=2_000, policy=policy)
        diff_times.append(time.perf_counter() - started)
    seconds, baseline = _best(diff_times), _best(hash_times)
    return emit(
        "diff",
        passes=len(all_payloads),
        seconds=round(seconds, 4),
        baseline_seconds=round(baseline, 4),
        ratio_vs_hash_only=round(seconds / baseline, 3),
        changed=update.counts.changed,
        new=update.counts.new,
        removed=update.counts.removed,
        repeats=repeats,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passes", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    run(args.passes, args.repeats)


if __name__ == "__main__":
    main()
