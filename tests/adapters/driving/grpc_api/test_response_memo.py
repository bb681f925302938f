"""The whole-response memo of GetTicketCache: keyed by the cache object, never by its contents."""

from __future__ import annotations

import json

import pytest

from adapters.driving.grpc_api.cache_encoding import CacheEncoder, ResponseMemo
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from domain.model import CachedPass, TicketCache
from tests.adapters.driving.grpc_api.fake_use_cases import NOW, make_cache, make_pass

VIEWS = [pb.CACHE_VIEW_SUMMARY, pb.CACHE_VIEW_FULL, pb.CACHE_VIEW_RAW]


@pytest.mark.parametrize("view", VIEWS)
def test_a_remembered_response_is_exactly_a_fresh_encoding(view: pb.CacheView.ValueType) -> None:
    cache = make_cache(1, passes=5, passes4=3)
    encoder = CacheEncoder()

    first = encoder.response_for(cache, view)
    second = encoder.response_for(cache, view)

    fresh = pb.GetTicketCacheResponse()
    CacheEncoder(memo_bytes=0).write_cache(fresh.cache, cache, view)
    assert second is first
    assert second.SerializeToString() == fresh.SerializeToString()


def test_an_equal_looking_cache_with_a_changed_payload_gets_its_own_response() -> None:
    # Same user, version, timestamps, uuid and hash: only the payload differs (a new object,
    # as the store returns for a changed row).
    before = make_pass("p", extra={"fare": 1})
    after = CachedPass(**{**{f: getattr(before, f) for f in before.__slots__}, "payload": {"fare": 2}})
    encoder = CacheEncoder()

    old = encoder.response_for(TicketCache(1, NOW, passes=(before,)), pb.CACHE_VIEW_RAW)
    new = encoder.response_for(TicketCache(1, NOW, passes=(after,)), pb.CACHE_VIEW_RAW)

    assert json.loads(old.cache.passes[0].payload_json)["fare"] == 1
    assert json.loads(new.cache.passes[0].payload_json)["fare"] == 2


def test_views_are_remembered_separately() -> None:
    cache = make_cache(1, passes=2)
    encoder = CacheEncoder()

    raw = encoder.response_for(cache, pb.CACHE_VIEW_RAW)
    summary = encoder.response_for(cache, pb.CACHE_VIEW_SUMMARY)

    assert raw.cache.passes[0].payload_json and not summary.cache.passes[0].payload_json


def test_a_reused_id_never_hits_because_the_memo_holds_the_object() -> None:
    memo = ResponseMemo(max_bytes=1_000_000)
    cache = make_cache(1)
    response = pb.GetTicketCacheResponse()
    memo.put(cache, pb.CACHE_VIEW_RAW, response)

    impostor = make_cache(1)
    memo.entries[(id(impostor), pb.CACHE_VIEW_RAW)] = memo.entries.pop((id(cache), pb.CACHE_VIEW_RAW))

    assert memo.get(impostor, pb.CACHE_VIEW_RAW) is None


def test_the_response_memo_is_bounded_by_bytes_and_count() -> None:
    memo = ResponseMemo(max_bytes=5_000, max_entries=10)
    encoder = CacheEncoder(memo_bytes=0)
    caches = [make_cache(i, passes=3) for i in range(1, 40)]
    for cache in caches:
        response = pb.GetTicketCacheResponse()
        encoder.write_cache(response.cache, cache, pb.CACHE_VIEW_RAW)
        memo.put(cache, pb.CACHE_VIEW_RAW, response)

    assert 0 < len(memo) <= 10
    assert memo.size <= 5_000


def test_a_disabled_encoder_memo_remembers_no_response() -> None:
    encoder = CacheEncoder(memo_bytes=0)
    cache = make_cache(1)

    first = encoder.response_for(cache, pb.CACHE_VIEW_FULL)

    assert encoder.response_for(cache, pb.CACHE_VIEW_FULL) is not first


@pytest.mark.parametrize("view", VIEWS)
def test_a_remembered_response_goes_out_as_the_bytes_made_when_it_was_remembered(
    view: pb.CacheView.ValueType,
) -> None:
    encoder = CacheEncoder()
    response = encoder.response_for(make_cache(1, passes=5, passes4=3), view)

    sent = encoder.serialize_response(response)

    assert sent == response.SerializeToString()
    assert encoder.serialize_response(response) is sent  # not serialized again


def test_a_response_the_memo_does_not_hold_is_serialized_as_it_is() -> None:
    encoder = CacheEncoder()
    remembered = encoder.response_for(make_cache(1, passes=2), pb.CACHE_VIEW_RAW)
    other = pb.GetTicketCacheResponse()
    other.CopyFrom(remembered)
    other.cache.user_id = 2

    assert encoder.serialize_response(other) == other.SerializeToString()
    assert CacheEncoder(memo_bytes=0).serialize_response(other) == other.SerializeToString()


def test_an_evicted_response_leaves_no_bytes_behind() -> None:
    memo = ResponseMemo(max_bytes=1_000_000, max_entries=2)
    encoder = CacheEncoder(memo_bytes=0)
    responses = []
    for user_id in (1, 2, 3):
        response = pb.GetTicketCacheResponse()
        encoder.write_cache(response.cache, make_cache(user_id, passes=2), pb.CACHE_VIEW_RAW)
        memo.put(make_cache(user_id), pb.CACHE_VIEW_RAW, response)
        responses.append(response)

    assert memo.serialized(responses[0]) is None
    assert memo.serialized(responses[2]) == responses[2].SerializeToString()
    assert len(memo.wire) == len(memo) == 2
