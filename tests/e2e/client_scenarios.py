"""Calls the real server through the installed client package only (run by a fresh virtualenv's
python in test_python_client.py). Prints one JSON line of what each scenario saw."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import grpc

from ticket_cache_client import RetryPolicy, TicketCacheClient, pb


def code_of(error: grpc.aio.AioRpcError) -> dict[str, str]:
    return {"code": error.code().name, "message": error.details() or ""}


async def calls(target: str, user_id: int, token: str | None) -> dict[str, object]:
    async with TicketCacheClient(target, token=token, timeout=20) as client:
        checked = await client.check(user_id)
        cache = await client.get(user_id, view=pb.CACHE_VIEW_SUMMARY)
        events = [event async for event in client.refresh_stale(user_ids=[user_id], max_age_seconds=3600)]
        try:
            await client.get(0)
            invalid: dict[str, str] = {}
        except grpc.aio.AioRpcError as error:
            invalid = code_of(error)
    return {
        "outcome": pb.Outcome.Name(checked.outcome),
        "passes": len(cache.passes),
        "events": [(e.done, e.total, pb.Outcome.Name(e.result.outcome)) for e in events],
        "invalid": invalid,
    }


async def check(target: str, user_id: int, token: str | None, retries: bool) -> dict[str, object]:
    retry = RetryPolicy() if retries else None
    async with TicketCacheClient(target, token=token, timeout=20, retry=retry) as client:
        try:
            result = await client.check(user_id)
        except grpc.aio.AioRpcError as error:
            return code_of(error)
    return {"outcome": pb.Outcome.Name(result.outcome)}


def main() -> None:
    scenario, target, user_id = sys.argv[1], sys.argv[2], int(sys.argv[3])
    token = os.environ.get("CLIENT_TOKEN") or None
    if scenario == "calls":
        seen = asyncio.run(calls(target, user_id, token))
    else:
        seen = asyncio.run(check(target, user_id, token, retries=scenario == "check"))
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
