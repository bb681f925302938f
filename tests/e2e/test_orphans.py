"""PurgeOrphanedCaches on a real server: caches whose user lost the token, made by plain SQL."""

from __future__ import annotations

import grpc
import pytest

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.harness import SandboxProcess, ServerProcess


async def build_caches(stub: pb_grpc.TicketCacheServiceAsyncStub, user_ids: list[int]) -> None:
    events = [
        event
        async for event in stub.RefreshStaleCaches(
            pb.RefreshStaleCachesRequest(user_ids=user_ids, concurrency=64), timeout=60
        )
    ]
    assert sorted(e.user_id for e in events if e.result.outcome == pb.OUTCOME_BUILT) == sorted(user_ids)


async def has_cache(stub: pb_grpc.TicketCacheServiceAsyncStub, user_id: int) -> bool:
    try:
        await stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=user_id, view=pb.CACHE_VIEW_SUMMARY))
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND
        return False
    return True


def orphan_by_sql(server: ServerProcess, deleted: list[int], emptied: list[int], nulled: list[int]) -> None:
    with_marks = ",".join("?" * len(deleted))
    server.query(f"DELETE FROM bytemark_tokens WHERE user_id IN ({with_marks})", tuple(deleted))
    for user_id in emptied:
        server.query("UPDATE bytemark_tokens SET token = '' WHERE user_id = ?", (user_id,))
    for user_id in nulled:
        server.query(
            "UPDATE bytemark_tokens SET token = NULL, refresh_token = NULL WHERE user_id = ?", (user_id,)
        )


async def test_a_dry_run_lists_the_orphans_and_a_purge_removes_exactly_them(
    stub: pb_grpc.TicketCacheServiceAsyncStub, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    users = [server.seed_user(sandbox, passes=1, expired=0) for _ in range(8)]
    deleted, emptied, nulled, kept = users[:2], users[2:4], users[4:6], users[6:]
    # A user whose old row is empty but whose newer row holds a token still has a token.
    server.query("INSERT INTO bytemark_tokens (user_id, token, status) VALUES (?, '', 1)", (kept[0],))
    await build_caches(stub, users)
    orphan_by_sql(server, deleted, emptied, nulled)
    orphans = sorted(deleted + emptied + nulled)

    dry = await stub.PurgeOrphanedCaches(pb.PurgeOrphanedCachesRequest(dry_run=True))
    caches_after_dry_run = [await has_cache(stub, u) for u in users]
    purged = await stub.PurgeOrphanedCaches(pb.PurgeOrphanedCachesRequest(dry_run=False))
    caches_after_purge = {u: await has_cache(stub, u) for u in users}
    again = await stub.PurgeOrphanedCaches(pb.PurgeOrphanedCachesRequest(dry_run=True))

    assert dry.dry_run and sorted(dry.removed_user_ids) == orphans
    assert all(caches_after_dry_run)
    assert not purged.dry_run and sorted(purged.removed_user_ids) == orphans
    assert caches_after_purge == {u: u in kept for u in users}
    assert list(again.removed_user_ids) == []


@pytest.mark.timeout(120)
async def test_a_purge_across_several_store_batches_removes_every_orphan_and_nothing_else(
    stub: pb_grpc.TicketCacheServiceAsyncStub, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    # More caches than one purge batch (500), orphans on both sides of the boundary.
    users = [server.seed_user(sandbox, passes=0, expired=0) for _ in range(620)]
    await build_caches(stub, users)
    orphans = users[::3]
    orphan_by_sql(server, orphans[: len(orphans) // 2], orphans[len(orphans) // 2 :], [])

    purged = await stub.PurgeOrphanedCaches(pb.PurgeOrphanedCachesRequest())
    survivors = [u for u in users if u not in set(orphans)]

    assert sorted(purged.removed_user_ids) == sorted(orphans)
    sample_survivors, sample_orphans = survivors[::25], orphans[::10]
    assert [await has_cache(stub, u) for u in sample_survivors] == [True] * len(sample_survivors)
    assert [await has_cache(stub, u) for u in sample_orphans] == [False] * len(sample_orphans)
    remaining = (await stub.PurgeOrphanedCaches(pb.PurgeOrphanedCachesRequest(dry_run=True))).removed_user_ids
    assert list(remaining) == []
