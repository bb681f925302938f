"""The per-rider sync state policy: transitions, backoff with jitter, skips, and the outage rule."""

from __future__ import annotations

import pytest

from domain.outage import OutageRule, OutageWatch
from domain.sync_state import (
    Backoff,
    SkipReason,
    SyncError,
    SyncState,
    TokenRow,
    auth_required,
    failed,
    login_repaired,
    skip_reason,
    succeeded,
    token_fingerprint,
)

NOW = 1_700_000_000
UNAVAILABLE = SyncError("UNAVAILABLE", "Bytemark GET /passes: HTTP 500")
INVALID_GRANT = SyncError("FAILED_PRECONDITION", "refresh token rejected (invalid_grant)")
BACKOFF = Backoff(base_seconds=60, max_seconds=21_600)


def test_backoff_doubles_per_failure_within_its_jitter_band() -> None:
    assert [BACKOFF.delay(n, jitter=1.0) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert [BACKOFF.delay(n, jitter=0.0) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert 30 < BACKOFF.delay(1, jitter=0.5) < 60


def test_backoff_never_exceeds_the_cap_even_after_many_failures() -> None:
    assert BACKOFF.delay(9, jitter=1.0) == 15_360
    assert BACKOFF.delay(10, jitter=1.0) == 21_600
    assert BACKOFF.delay(10_000, jitter=1.0) == 21_600
    assert BACKOFF.delay(10_000, jitter=0.0) == 10_800


def test_backoff_rejects_a_cap_below_the_base() -> None:
    with pytest.raises(ValueError, match="base_seconds"):
        Backoff(base_seconds=120, max_seconds=60)


def test_a_failure_puts_a_rider_into_failing_with_backoff() -> None:
    status = failed(None, 7, NOW, UNAVAILABLE, BACKOFF, jitter=1.0)
    assert status.state is SyncState.FAILING
    assert status.consecutive_failures == 1
    assert status.next_attempt_at == NOW + 60
    assert status.last_error == UNAVAILABLE
    assert status.last_attempt_at == NOW and status.last_success_at is None


def test_consecutive_failures_count_up_and_keep_the_last_success() -> None:
    first = failed(succeeded(7, NOW - 100, NOW - 100), 7, NOW, UNAVAILABLE, BACKOFF, jitter=1.0)
    second = failed(first, 7, NOW + 60, UNAVAILABLE, BACKOFF, jitter=1.0)
    assert second.consecutive_failures == 2
    assert second.next_attempt_at == NOW + 60 + 120
    assert second.last_success_at == NOW - 100 and second.cache_timestamp == NOW - 100


def test_any_success_resets_the_rider_to_ok() -> None:
    failing = failed(None, 7, NOW, UNAVAILABLE, BACKOFF, jitter=1.0)
    status = succeeded(7, NOW + 500, cache_timestamp=NOW + 500)
    assert status.state is SyncState.OK
    assert (status.consecutive_failures, status.last_error, status.next_attempt_at) == (0, None, None)
    assert status.last_success_at == NOW + 500
    assert failing.state is SyncState.FAILING  # values, not mutation


def test_a_failure_after_ok_starts_counting_from_one() -> None:
    status = failed(succeeded(7, NOW, NOW), 7, NOW + 1, UNAVAILABLE, BACKOFF, jitter=1.0)
    assert status.consecutive_failures == 1


def test_a_dead_token_puts_the_rider_in_auth_required_with_its_token_row() -> None:
    row = TokenRow(token_fingerprint("a", "r"), NOW - 50)
    status = auth_required(None, 7, NOW, INVALID_GRANT, row)
    assert status.state is SyncState.AUTH_REQUIRED
    assert status.token_fingerprint == row.fingerprint
    assert status.next_attempt_at is None


def test_ok_and_unknown_riders_are_never_skipped() -> None:
    assert skip_reason(None, NOW, None) is None
    assert skip_reason(succeeded(7, NOW, NOW), NOW, None) is None


def test_failing_riders_are_skipped_until_their_next_attempt() -> None:
    status = failed(None, 7, NOW, UNAVAILABLE, BACKOFF, jitter=1.0)
    assert skip_reason(status, NOW + 59, None) is SkipReason.BACKOFF
    assert skip_reason(status, NOW + 60, None) is None


def test_auth_required_riders_are_skipped_until_their_token_row_changes() -> None:
    row = TokenRow(token_fingerprint("a", "r"), NOW - 50)
    status = auth_required(None, 7, NOW, INVALID_GRANT, row)
    assert skip_reason(status, NOW + 10_000, row) is SkipReason.AUTH_REQUIRED
    assert skip_reason(status, NOW + 10_000, None) is SkipReason.AUTH_REQUIRED
    assert skip_reason(status, NOW, TokenRow(token_fingerprint("b", "r"), NOW - 50)) is None
    assert skip_reason(status, NOW, TokenRow(token_fingerprint("a", "s"), NOW - 50)) is None
    assert skip_reason(status, NOW, TokenRow(row.fingerprint, NOW + 1)) is None
    assert skip_reason(status, NOW, TokenRow(row.fingerprint, NOW)) is SkipReason.AUTH_REQUIRED


def test_a_rider_that_had_no_token_row_is_repaired_by_any_token() -> None:
    status = auth_required(None, 7, NOW, INVALID_GRANT, None)
    assert login_repaired(status, TokenRow(token_fingerprint("a", None), None))
    assert not login_repaired(status, TokenRow("", NOW + 5))


def test_fingerprints_tell_token_pairs_apart_without_holding_them() -> None:
    assert token_fingerprint("a", "b") == token_fingerprint("a", "b")
    assert token_fingerprint("a", "b") != token_fingerprint("ab", None)
    assert token_fingerprint(None, None) == ""
    assert "secret" not in token_fingerprint("secret", "secret")


def _watch() -> OutageWatch:
    return OutageWatch(OutageRule(window=10, ratio=0.8))


def test_an_outage_trips_when_most_of_a_full_window_fails_the_same_way() -> None:
    watch = _watch()
    for user_id in range(1, 8):
        watch.observe(user_id, "GET /passes")
    watch.observe(8, None)
    watch.observe(9, "GET /passes")
    assert watch.outage is None  # 8 failures, but the window is not full yet
    watch.observe(10, None)
    assert watch.outage is not None and (watch.outage.failures, watch.outage.window) == (8, 10)
    assert watch.excuses("GET /passes") and not watch.excuses("POST /oauth/token")


def test_fewer_failures_than_the_ratio_are_no_outage() -> None:
    watch = _watch()
    for user_id in range(1, 8):
        watch.observe(user_id, "GET /passes")
    for user_id in range(8, 11):
        watch.observe(user_id, None)
    assert watch.outage is None


def test_failures_of_different_endpoints_do_not_add_up_to_an_outage() -> None:
    watch = _watch()
    for user_id in range(1, 11):
        watch.observe(user_id, "GET /passes" if user_id % 2 else "GET /v4.0/passes")
    assert watch.outage is None


def test_a_failure_is_the_riders_own_once_it_leaves_the_window_without_an_outage() -> None:
    watch = _watch()
    assert watch.observe(1, "GET /passes") == []
    for user_id in range(2, 11):
        assert watch.observe(user_id, None) == []
    assert watch.held() == [(1, "GET /passes")]
    assert watch.observe(11, None) == [1]
    assert watch.held() == []
    assert watch.outage is None


def test_a_short_run_never_declares_an_outage() -> None:
    watch = _watch()
    for user_id in range(1, 10):
        watch.observe(user_id, "GET /passes")
    assert watch.outage is None
    assert len(watch.held()) == 9
