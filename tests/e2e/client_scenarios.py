"""Calls the real server through the installed client package only (run by a fresh virtualenv's
python in test_python_client.py). Prints one JSON line of what each scenario saw."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import grpc

from ticket_cache_client import RetryPolicy, TicketCacheClient, TicketCacheError, pb


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


def described(error: TicketCacheError) -> dict[str, object]:
    return {
        **code_of(error),
        "reason": error.reason,
        "domain": error.error_details.domain,
        "metadata": dict(error.metadata),
        "field_violations": [[v.field, v.description] for v in error.field_violations],
        "retry_delay": error.retry_delay.total_seconds() if error.retry_delay is not None else None,
    }


async def errors(target: str, user_id: int, token: str | None) -> dict[str, object]:
    """A missing cache, a bad id inside a stream's request, and Bytemark's Retry-After (the test
    makes Bytemark answer 429 for `user_id`): each error as the client's TicketCacheError reads it."""
    seen: dict[str, object] = {}
    async with TicketCacheClient(target, token=token, timeout=20, retry=None) as client:
        try:
            await client.get(999_999_999)
        except TicketCacheError as error:
            seen["not_found"] = described(error)
        try:
            _ = [event async for event in client.refresh_stale(user_ids=[user_id, 0])]
        except TicketCacheError as error:
            seen["invalid"] = described(error)
        try:
            await client.check(user_id)
        except TicketCacheError as error:
            seen["unavailable"] = described(error)
    return seen


def main() -> None:
    scenario, target, user_id = sys.argv[1], sys.argv[2], int(sys.argv[3])
    token = os.environ.get("CLIENT_TOKEN") or None
    if scenario == "calls":
        seen = asyncio.run(calls(target, user_id, token))
    elif scenario == "errors":
        seen = asyncio.run(errors(target, user_id, token))
    else:
        seen = asyncio.run(check(target, user_id, token, retries=scenario == "check"))
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
