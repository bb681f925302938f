"""A Struct spends three protobuf nesting levels per JSON level and protobuf decodes at most
100: the FULL view must fall back to JSON text before a client would fail to decode."""

from __future__ import annotations

from typing import Any

import orjson

from adapters.driving.grpc_api.cache_encoding import MAX_STRUCT_JSON_DEPTH, CacheEncoder
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from domain.model import CachedPass, TicketCache


def nested(depth: int) -> dict[str, Any]:
    payload: dict[str, Any] = {"leaf": True}
    for _ in range(depth - 1):
        payload = {"child": payload}
    return payload


def full_view_of(payload: dict[str, Any]) -> pb.CachedPass:
    entry = CachedPass("p", 1, "USABLE", 0, payload, "hash")
    response = CacheEncoder().response_for(TicketCache(7, 1, (entry,)), pb.CACHE_VIEW_FULL)
    # Decode from the wire, as a client would, so the depth limit applies.
    return pb.GetTicketCacheResponse.FromString(response.SerializeToString()).cache.passes[0]


def test_a_payload_at_the_depth_limit_is_sent_as_a_struct_that_clients_can_decode() -> None:
    entry = full_view_of(nested(MAX_STRUCT_JSON_DEPTH))
    assert entry.WhichOneof("content") == "payload"


def test_one_level_deeper_is_sent_as_exact_json_text_instead() -> None:
    payload = nested(MAX_STRUCT_JSON_DEPTH + 1)
    entry = full_view_of(payload)
    assert entry.WhichOneof("content") == "payload_json"
    assert orjson.loads(entry.payload_json) == payload
