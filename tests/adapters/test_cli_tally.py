"""The CLI's running totals count riders skipped by sync state and say when a run stopped early."""

from __future__ import annotations

from adapters.driving.operator_cli.tally import Tally
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb


def test_sync_skips_are_counted_by_reason_and_an_outage_stop_is_in_the_summary() -> None:
    tally = Tally()
    tally.add(pb.RefreshStaleCachesResponse(user_id=1, skipped=pb.SKIP_REASON_BACKOFF, done=1, total=3))
    tally.add(pb.RefreshStaleCachesResponse(user_id=2, skipped=pb.SKIP_REASON_AUTH_REQUIRED, done=2, total=3))
    tally.add(pb.RefreshStaleCachesResponse(user_id=3, skipped=pb.SKIP_REASON_BACKOFF, done=3, total=3))
    tally.add(pb.RefreshStaleCachesResponse(done=3, total=3, stopped="stopped early: general outage"))

    assert tally.skipped_text() == "backoff 2, auth required 1"
    assert tally.summary("refresh-stale", 1.0).endswith(
        "skipped: backoff 2, auth required 1; stopped early: general outage"
    )
