"""The shard a `run refresh-stale` job takes: checked before the server's stack loads, so a
usage error answers at once instead of after seconds of imports."""

from __future__ import annotations

import argparse
import os

SHARD_INDEX_VARIABLE = "JOB_COMPLETION_INDEX"  # set by Kubernetes in each pod of an Indexed Job


class UsageError(Exception):
    pass


def shard_of(
    args: argparse.Namespace, environ: dict[str, str] | os._Environ[str] = os.environ
) -> tuple[int, int]:
    """(shard_index, shard_count): --shard-index, else $JOB_COMPLETION_INDEX; (0, 0) is unsharded."""
    index = args.shard_index
    if index is None and environ.get(SHARD_INDEX_VARIABLE, "").strip():
        text = environ[SHARD_INDEX_VARIABLE].strip()
        if not text.isdigit():
            raise UsageError(f"{SHARD_INDEX_VARIABLE} must be a shard index (an integer >= 0), got {text!r}")
        index = int(text)
    count = args.shard_count
    if index is None:
        if count is not None:
            raise UsageError(f"--shard-count needs --shard-index or ${SHARD_INDEX_VARIABLE}")
        return 0, 0
    if count is None:
        raise UsageError(f"a shard index ({index}) needs --shard-count")
    if index >= count:
        raise UsageError(f"shard index {index} must be below --shard-count {count}")
    return index, count
