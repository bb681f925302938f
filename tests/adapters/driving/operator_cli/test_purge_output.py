"""What `purge-orphans` prints on a terminal: the caches, and how many sync statuses of riders
without a token went with them."""

from __future__ import annotations

import io

from rich.console import Console

from adapters.driving.operator_cli.output import HumanOutput
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb


def printed(response: pb.PurgeOrphanedCachesResponse) -> str:
    out = io.StringIO()
    HumanOutput(Console(file=out, width=200)).purged(response)
    return out.getvalue()


def test_a_dry_run_says_what_it_would_remove_caches_and_sync_statuses_alike() -> None:
    text = printed(
        pb.PurgeOrphanedCachesResponse(removed_user_ids=[7, 9], dry_run=True, removed_sync_statuses=3)
    )

    assert (
        text.strip()
        == "would remove 2 orphaned caches: 7, 9; and the sync statuses of 3 riders without a token"
    )


def test_a_purge_says_what_it_removed() -> None:
    text = printed(pb.PurgeOrphanedCachesResponse(removed_sync_statuses=1))

    assert text.startswith("removed 0 orphaned caches: none;") and "of 1 riders" in text
