"""One pod of the hourly refresh's Indexed Job, run as its own process by the cluster rehearsal.

Kubernetes gives the pod JOB_COMPLETION_INDEX; the pod refreshes that shard of SHARD_COUNT through
RefreshStaleCaches on TICKET_CACHE_SERVER (the client package: round_robin, gRPC retryPolicy).
Prints one line per rider; exits 1 if any rider failed, as a failed pod would.
"""

from __future__ import annotations

import asyncio
import os
import sys

from ticket_cache_client.client import TicketCacheClient


async def main() -> int:
    index, count = int(os.environ["JOB_COMPLETION_INDEX"]), int(os.environ["SHARD_COUNT"])
    failed = 0
    async with TicketCacheClient(os.environ["TICKET_CACHE_SERVER"]) as client:
        events = client.refresh_stale(
            shard_index=index,
            shard_count=count,
            max_age_seconds=int(os.environ.get("MAX_AGE_SECONDS", "3600")),
            concurrency=int(os.environ.get("CONCURRENCY", "4")),
        )
        async for event in events:
            failed = int(event.failed)
            print(f"shard {index}: user {event.user_id} done {event.done}/{event.total}", flush=True)
    print(f"shard {index}: finished, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
