from dataclasses import replace

from domain.cache_diff import build_cache, update_cache
from domain.free_tickets import FreeTicketPolicy
from domain.model import Change, FetchedPasses, Outcome, PassList, TicketCache
from domain.payload_hash import payload_hash
from tests.unit.passes import FREE_PRODUCT, a_pass

T0 = 1_700_000_000
T1 = T0 + 7200
POLICY = FreeTicketPolicy()


def built(v1: list[dict], v4: list[dict] | None = None) -> TicketCache:
    return build_cache(42, FetchedPasses(v1=v1, v4_expired=v4 or []), now=T0, version=3)


def test_build_snapshots_both_lists_sorted_with_hashes_and_no_free_status() -> None:
    v1 = [
        a_pass("new", created="2026-11-27T00:00:00Z", product=FREE_PRODUCT),
        a_pass("old", created="2026-01-01T00:00:00Z"),
    ]
    v4 = [a_pass("exp", status="EXPIRED")]
    cache = built(v1, v4)
    assert [e.pass_uuid for e in cache.passes] == ["old", "new"]
    assert [e.pass_uuid for e in cache.passes4] == ["exp"]
    assert all(e.free_ticket_status == 0 for e in cache.passes + cache.passes4)
    assert all(e.timestamp == T0 for e in cache.passes)
    assert cache.passes[1].payload is v1[0]
    assert cache.passes[1].payload_hash == payload_hash(v1[0])
    assert cache.passes4[0].status == "EXPIRED"
    assert cache.timestamp == T0 and cache.user_id == 42


def test_build_document_has_the_node_shape_plus_version() -> None:
    doc = built([a_pass("a")]).to_document()
    assert set(doc) == {"user_id", "timestamp", "passes", "passes4", "version"}
    assert set(doc["passes"][0]) == {
        "pass_uuid",
        "timestamp",
        "status",
        "free_ticket_status",
        "payload",
        "payload_hash",
    }
    assert TicketCache.from_document(doc) == built([a_pass("a")])


def test_unchanged_passes_keep_their_timestamp_and_free_status_and_outcome_is_unchanged() -> None:
    old = built([a_pass("a")], [a_pass("e", status="EXPIRED")])
    old = replace(old, passes=(replace(old.passes[0], free_ticket_status=1),))
    update = update_cache(old, FetchedPasses([a_pass("a")], [a_pass("e", status="EXPIRED")]), T1, POLICY)
    assert update.outcome is Outcome.UNCHANGED
    assert update.cache.passes[0].timestamp == T0
    assert update.cache.passes[0].free_ticket_status == 1
    assert update.cache.timestamp == T1
    assert update.log_entries == ()
    assert update.counts.new == update.counts.changed == update.counts.removed == 0


def test_a_changed_hash_takes_new_status_payload_hash_and_timestamp_and_is_logged() -> None:
    old = built([a_pass("a", status="USABLE")])
    fresh = a_pass("a", status="ACTIVE")
    update = update_cache(old, FetchedPasses([fresh], []), T1, POLICY)
    entry = update.cache.passes[0]
    assert update.outcome is Outcome.UPDATED
    assert (entry.status, entry.payload, entry.payload_hash, entry.timestamp) == (
        "ACTIVE",
        fresh,
        payload_hash(fresh),
        T1,
    )
    assert update.counts.changed == 1
    [logged] = update.log_entries
    assert (logged.pass_uuid, logged.list, logged.change, logged.status) == (
        "a",
        PassList.PASSES,
        Change.UPDATED,
        "ACTIVE",
    )
    assert logged.user_id == 42 and logged.timestamp == T1 and logged.payload_hash == entry.payload_hash


def test_passes_missing_from_v1_drop_out_and_count_as_removed() -> None:
    old = built([a_pass("a"), a_pass("b")])
    update = update_cache(old, FetchedPasses([a_pass("b")], []), T1, POLICY)
    assert [e.pass_uuid for e in update.cache.passes] == ["b"]
    assert update.counts.removed == 1
    assert update.outcome is Outcome.UPDATED
    assert update.log_entries == ()


def test_passes4_never_forgets_expired_history_and_appends_new_ones_in_order() -> None:
    old = built([], [a_pass("e1", created="2026-01-01T00:00:00Z", status="EXPIRED")])
    fresh = [a_pass("e2", created="2026-02-01T00:00:00Z", status="EXPIRED")]
    update = update_cache(old, FetchedPasses([], fresh), T1, POLICY)
    assert [e.pass_uuid for e in update.cache.passes4] == ["e1", "e2"]
    assert update.cache.passes4[0].timestamp == T0
    assert update.cache.passes4[1].timestamp == T1
    [logged] = update.log_entries
    assert (logged.pass_uuid, logged.list, logged.change) == (
        "e2",
        PassList.PASSES4,
        Change.CREATED,
    )
    assert update.counts.passes4 == 2 and update.counts.removed == 0


def test_passes4_replaces_an_entry_whose_hash_changed() -> None:
    old = built([], [a_pass("e1", status="EXPIRED")])
    fresh = a_pass("e1", status="EXPIRED", activation_count=3)
    update = update_cache(old, FetchedPasses([], [fresh]), T1, POLICY)
    [entry] = update.cache.passes4
    assert entry.payload == fresh and entry.timestamp == T1
    [logged] = update.log_entries
    assert (logged.list, logged.change) == (PassList.PASSES4, Change.UPDATED)


def test_a_new_free_pass_gets_free_status_one_and_is_reported() -> None:
    old = built([a_pass("paid")])
    free = a_pass("gift", product=FREE_PRODUCT)
    update = update_cache(old, FetchedPasses([a_pass("paid"), free], []), T1, POLICY)
    gift = next(e for e in update.cache.passes if e.pass_uuid == "gift")
    assert gift.free_ticket_status == 1
    assert [p.pass_uuid for p in update.new_free_passes] == ["gift"]
    assert update.counts.new == 1 and update.counts.new_free == 1
    [logged] = update.log_entries
    assert logged.change is Change.CREATED


def test_a_free_pass_already_cached_in_either_list_is_not_new() -> None:
    old = built([], [a_pass("gift", product=FREE_PRODUCT, status="EXPIRED")])
    moved = a_pass("gift", product=FREE_PRODUCT, status="USABLE")
    update = update_cache(old, FetchedPasses([moved], []), T1, POLICY)
    assert update.new_free_passes == ()
    assert update.cache.passes[0].free_ticket_status == 0
    assert update.counts.new == 0 and update.counts.changed == 1


def test_a_new_free_pass_seen_in_both_lists_is_reported_once() -> None:
    old = built([])
    free = a_pass("gift", product=FREE_PRODUCT)
    update = update_cache(old, FetchedPasses([free], [dict(free, status="EXPIRED")]), T1, POLICY)
    assert [p.pass_uuid for p in update.new_free_passes] == ["gift"]
    assert update.counts.new_free == 1


def test_new_paid_passes_are_logged_but_not_free() -> None:
    update = update_cache(built([]), FetchedPasses([a_pass("p")], []), T1, POLICY)
    assert update.cache.passes[0].free_ticket_status == 0
    assert update.new_free_passes == ()
    assert update.outcome is Outcome.UPDATED


def test_a_configured_product_set_replaces_the_default() -> None:
    policy = FreeTicketPolicy.of(["custom-free"])
    update = update_cache(
        built([]),
        FetchedPasses([a_pass("x", product="custom-free"), a_pass("y", product=FREE_PRODUCT)], []),
        T1,
        policy,
    )
    assert [p.pass_uuid for p in update.new_free_passes] == ["x"]


def test_update_keeps_the_version_it_read_for_compare_and_set() -> None:
    update = update_cache(built([a_pass("a")]), FetchedPasses([a_pass("a")], []), T1, POLICY)
    assert update.cache.version == 3


def test_a_uuid_listed_twice_keeps_one_entry_with_the_last_payload() -> None:
    first, second = a_pass("dup", status="USABLE"), a_pass("dup", status="ACTIVE")
    cache = built([first, a_pass("other"), second])
    assert [e.pass_uuid for e in cache.passes] == ["dup", "other"]
    assert cache.passes[0].status == "ACTIVE"


def test_update_result_lists_are_sorted_by_time_created() -> None:
    old = built([a_pass("mid", created="2026-06-01T00:00:00Z")])
    fresh = [
        a_pass("late", created="2026-09-01T00:00:00Z"),
        a_pass("mid", created="2026-06-01T00:00:00Z"),
        a_pass("early", created="2026-01-01T00:00:00Z"),
    ]
    update = update_cache(old, FetchedPasses(fresh, []), T1, POLICY)
    assert [e.pass_uuid for e in update.cache.passes] == ["early", "mid", "late"]


# -- PASSES4_RETENTION_DAYS ------------------------------------------------------------------

DAY = 86_400


def expired_history(*ages_in_days: int) -> TicketCache:
    """A cache whose passes4 holds one unlisted expired entry per age, stamped that many days ago."""
    old = built([], [a_pass(f"e{age}", status="EXPIRED") for age in ages_in_days])
    entries = tuple(
        replace(entry, timestamp=T1 - age * DAY) for entry, age in zip(old.passes4, ages_in_days, strict=True)
    )
    return replace(old, passes4=entries)


def test_without_retention_expired_history_is_kept_forever_as_node_did() -> None:
    old = expired_history(10_000, 400, 1)

    update = update_cache(old, FetchedPasses([], []), T1, POLICY)

    assert [e.pass_uuid for e in update.cache.passes4] == ["e10000", "e400", "e1"]
    assert update.outcome is Outcome.UNCHANGED


def test_retention_drops_unlisted_entries_older_than_n_days_and_keeps_younger_ones() -> None:
    old = expired_history(400, 31, 30, 1)

    update = update_cache(old, FetchedPasses([], []), T1, POLICY, passes4_retention_days=30)

    assert [e.pass_uuid for e in update.cache.passes4] == ["e30", "e1"]
    assert update.outcome is Outcome.UPDATED
    assert update.log_entries == ()  # forgetting history is not a pass change


def test_retention_keeps_an_old_entry_bytemark_still_lists() -> None:
    old = expired_history(400)
    still_listed = [a_pass("e400", status="EXPIRED")]

    update = update_cache(old, FetchedPasses([], still_listed), T1, POLICY, passes4_retention_days=30)

    assert [e.pass_uuid for e in update.cache.passes4] == ["e400"]
    assert update.cache.passes4[0].timestamp == T1 - 400 * DAY
    assert update.outcome is Outcome.UNCHANGED


def test_retention_never_touches_passes_from_the_v1_list() -> None:
    old = replace(built([a_pass("live")]), passes=(replace(built([a_pass("live")]).passes[0], timestamp=0),))

    update = update_cache(old, FetchedPasses([a_pass("live")], []), T1, POLICY, passes4_retention_days=1)

    assert [e.pass_uuid for e in update.cache.passes] == ["live"]
