"""The fast orderings (sorting parsed instants) give exactly the order of `time_created_sort_key`,
the rule pinned to Node's written out plainly, over generated lists with ties, offsets, odd years
and garbage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.cache_diff import build_cache, update_cache
from domain.free_tickets import FreeTicketPolicy
from domain.model import FetchedPasses, Payload
from domain.ordering import sort_by_time_created

UNPARSABLE = (1, 0.0)


def time_created_sort_key(payload: Payload) -> tuple[int, float]:
    """(0, epoch seconds) for a parsable ISO-8601 instant, (1, 0) otherwise so those go last."""
    raw: Any = payload.get("time_created")
    if not isinstance(raw, str) or not raw:
        return UNPARSABLE
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return UNPARSABLE
    if moment.tzinfo is None:  # the service runs in UTC; Bytemark sends 'Z' instants anyway
        moment = moment.replace(tzinfo=UTC)
    return (0, moment.timestamp())


# Float epoch seconds tie for these distinct instants (far from 1970), so the rule keeps them
# in the order received; a plain sort on the instants would not.
FLOAT_TIES = [
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59.999998Z",
    "9999-12-31T23:59:59.999997+00:00",
    "0001-01-01T00:00:00.000001Z",
    "0001-01-01T00:00:00Z",
]
ODD = [
    "2026-11-20T14:05:32.000Z",
    "2026-11-20T16:05:32+02:00",  # the same instant as the line above
    "2026-11-20T14:05:32",  # naive: read as UTC, the same instant again
    "2026-11-20",
    "2026-02-30T00:00:00Z",
    "2199-12-31T23:59:59.999999Z",
    "2200-01-01T00:00:00Z",
    "1700-01-01T00:00:00Z",
    "1699-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "yesterday",
    " 2026-11-20T14:05:32Z",
    "",
    12345,
    None,
]
OFFSETS = [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]


@st.composite
def generated_instants(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(timezones=st.sampled_from(OFFSETS)))
    text = moment.isoformat(timespec=draw(st.sampled_from(["seconds", "milliseconds", "microseconds"])))
    return text.replace("+00:00", "Z") if draw(st.booleans()) else text


TIMES = st.one_of(st.sampled_from(FLOAT_TIES + ODD), generated_instants())


def _payload(index: int, time_created: Any, uuid_pool: int) -> Payload:
    payload: Payload = {"uuid": f"u{index % uuid_pool}", "status": "USABLE", "n": index}
    if time_created is not None:
        payload["time_created"] = time_created
    return payload


@st.composite
def payload_lists(draw: st.DrawFn, uuid_pool: int = 1_000) -> list[Payload]:
    times = draw(st.lists(TIMES, max_size=40))
    return [_payload(index, created, uuid_pool) for index, created in enumerate(times)]


def _by_rule(payloads: list[Payload]) -> list[Payload]:
    return sorted(payloads, key=time_created_sort_key)


def _deduped(payloads: list[Payload]) -> list[Payload]:
    by_uuid: dict[str, Payload] = {}
    for payload in payloads:
        by_uuid[payload["uuid"]] = payload
    return list(by_uuid.values())


@settings(max_examples=400, deadline=None)
@given(payload_lists())
def test_sorting_passes_matches_the_rule(payloads: list[Payload]) -> None:
    assert sort_by_time_created(payloads) == _by_rule(payloads)


def test_instants_whose_float_seconds_tie_keep_the_order_received() -> None:
    payloads = [_payload(index, created, 100) for index, created in enumerate(FLOAT_TIES)]
    assert [p["n"] for p in sort_by_time_created(payloads)] == [3, 4, 0, 1, 2]


@settings(max_examples=300, deadline=None)
@given(payload_lists(uuid_pool=30), payload_lists(uuid_pool=30), payload_lists(uuid_pool=30))
def test_built_and_updated_caches_are_ordered_by_the_rule(
    old_v1: list[Payload], old_v4: list[Payload], fresh: list[Payload]
) -> None:
    old = build_cache(7, FetchedPasses(v1=old_v1, v4_expired=old_v4), now=1_000)
    assert [e.payload for e in old.passes] == _by_rule(_deduped(old_v1))
    assert [e.payload for e in old.passes4] == _by_rule(_deduped(old_v4))

    half = len(fresh) // 2
    fresh_v1, fresh_v4 = fresh[:half], fresh[half:]
    updated = update_cache(
        old, FetchedPasses(v1=fresh_v1, v4_expired=fresh_v4), now=2_000, policy=FreeTicketPolicy()
    ).cache
    assert [e.pass_uuid for e in updated.passes] == [p["uuid"] for p in _by_rule(_deduped(fresh_v1))]
    # passes4 keeps the old entries no longer listed; a listed one sorts by its fresh payload.
    listed = {p["uuid"]: p for p in _deduped(fresh_v4)}
    kept = {e.pass_uuid: e.payload for e in old.passes4} | listed
    expected4 = [p["uuid"] for p in sorted(kept.values(), key=time_created_sort_key)]
    assert [e.pass_uuid for e in updated.passes4] == expected4


def test_the_float_tie_fallback_is_needed() -> None:
    """Guards the test above: without the fallback these instants would be reordered."""
    instants = [datetime.fromisoformat(raw) for raw in FLOAT_TIES[:3]]
    assert len({moment.timestamp() for moment in instants}) == 1
    assert sorted(instants) != instants
