"""The memoised entry encoder: same bytes with or without the memo, bounded memory."""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format

from adapters.driving.grpc_api.cache_encoding import CacheEncoder, EncodedEntryMemo
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from domain.model import CachedPass, TicketCache
from tests.adapters.driving.grpc_api.fake_use_cases import NOW, make_cache, make_pass

VIEWS = [pb.CACHE_VIEW_SUMMARY, pb.CACHE_VIEW_FULL, pb.CACHE_VIEW_RAW]


def encode(encoder: CacheEncoder, cache: TicketCache, view: pb.CacheView.ValueType) -> pb.TicketCache:
    message = pb.TicketCache()
    encoder.write_cache(message, cache, view)
    return message


@pytest.mark.parametrize("view", VIEWS)
def test_a_memo_hit_encodes_exactly_like_a_fresh_encoding(view: pb.CacheView.ValueType) -> None:
    cache = make_cache(1, passes=5, passes4=3)
    memoised = CacheEncoder()

    encode(memoised, cache, view)  # fills the memo
    from_memo = encode(memoised, cache, view)

    assert (
        from_memo.SerializeToString() == encode(CacheEncoder(memo_bytes=0), cache, view).SerializeToString()
    )


def test_a_changed_payload_is_never_served_from_the_memo() -> None:
    # same uuid, hash, timestamps: only the payload differs
    before = make_pass("p", extra={"fare": 1})
    after = CachedPass(**{**{f: getattr(before, f) for f in before.__slots__}, "payload": {"fare": 2}})
    encoder = CacheEncoder()

    encode(encoder, TicketCache(1, NOW, passes=(before,)), pb.CACHE_VIEW_FULL)
    second = encode(encoder, TicketCache(1, NOW, passes=(after,)), pb.CACHE_VIEW_FULL)

    assert json_format.MessageToDict(second.passes[0].payload) == {"fare": 2}


def test_the_memo_stays_within_its_byte_budget() -> None:
    memo = EncodedEntryMemo(max_bytes=10_000)

    for i in range(100):
        memo.put(("key", i, b"x" * 200), b"y" * 500)

    assert 0 < len(memo) < 100
    assert memo.size <= 10_000


def test_a_disabled_memo_keeps_nothing() -> None:
    encoder = CacheEncoder(memo_bytes=0)

    encode(encoder, make_cache(1), pb.CACHE_VIEW_RAW)

    assert len(encoder._memo) == 0  # noqa: SLF001


def test_non_string_statuses_are_sent_as_json_text_and_a_missing_one_as_empty() -> None:
    odd = CachedPass("a", NOW, {"code": 3}, 0, {"uuid": "a"}, "h")
    missing = CachedPass("b", NOW, None, 0, {"uuid": "b"}, "h")

    message = encode(CacheEncoder(), TicketCache(1, NOW, passes=(odd, missing)), pb.CACHE_VIEW_SUMMARY)

    assert json.loads(message.passes[0].status) == {"code": 3}
    assert message.passes[1].status == ""


def test_values_a_struct_cannot_hold_do_not_fail_the_full_view() -> None:
    entry = CachedPass("a", NOW, "USABLE", 0, {"huge": 10**400, "text": "x\ud800y"}, "h")

    message = encode(CacheEncoder(), TicketCache(1, NOW, passes=(entry,)), pb.CACHE_VIEW_FULL)
    raw = encode(CacheEncoder(), TicketCache(1, NOW, passes=(entry,)), pb.CACHE_VIEW_RAW)

    assert message.passes[0].payload["huge"] == float("inf")
    assert json.loads(raw.passes[0].payload_json)["huge"] == 10**400  # RAW stays exact
