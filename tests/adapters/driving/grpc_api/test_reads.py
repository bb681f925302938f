"""GetTicketCache in each view, over a real channel."""

from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf import json_format

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from domain.model import TicketCache
from tests.adapters.driving.grpc_api.conftest import RunningServer
from tests.adapters.driving.grpc_api.fake_use_cases import BIG_INT, NOW, make_cache, make_pass


async def test_full_view_sends_payloads_as_structs_readable_as_json(grpc_server: RunningServer) -> None:
    cache = make_cache(42)

    response = await grpc_server.stub.GetTicketCache(
        pb.GetTicketCacheRequest(user_id=42, view=pb.CACHE_VIEW_FULL)
    )

    got = response.cache
    assert (got.user_id, got.version, got.timestamp.seconds) == (42, 3, NOW)
    assert [p.pass_uuid for p in got.passes] == [p.pass_uuid for p in cache.passes]
    assert [p.pass_uuid for p in got.passes4] == [p.pass_uuid for p in cache.passes4]
    entry, expected = got.passes[0], cache.passes[0]
    assert entry.WhichOneof("content") == "payload"
    assert json_format.MessageToDict(entry.payload) == expected.payload
    assert (entry.status, entry.free_ticket_status, entry.payload_hash, entry.timestamp.seconds) == (
        expected.status,
        expected.free_ticket_status,
        expected.payload_hash,
        expected.timestamp,
    )
    assert got.passes4[0].status == "EXPIRED"


async def test_unspecified_view_means_full(grpc_server: RunningServer) -> None:
    response = await grpc_server.stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=42))

    assert all(p.WhichOneof("content") == "payload" for p in response.cache.passes)


async def test_raw_view_sends_the_exact_json_text_even_for_integers_past_64_bits(
    grpc_server: RunningServer,
) -> None:
    payload_extra = {"serial": BIG_INT, "ratio": 0.1, "name": "Caf\u00e9 \u2603", "nested": {"n": -(2**70)}}
    entry = make_pass("big", extra=payload_extra)
    grpc_server.use_cases.caches[5] = TicketCache(user_id=5, timestamp=NOW, passes=(entry,))

    response = await grpc_server.stub.GetTicketCache(
        pb.GetTicketCacheRequest(user_id=5, view=pb.CACHE_VIEW_RAW)
    )

    sent = response.cache.passes[0]
    assert sent.WhichOneof("content") == "payload_json"
    assert not sent.HasField("payload")
    assert json.loads(sent.payload_json) == entry.payload  # exact: ints compare as ints
    assert str(BIG_INT) in sent.payload_json


async def test_summary_view_sends_entries_without_payloads(grpc_server: RunningServer) -> None:
    response = await grpc_server.stub.GetTicketCache(
        pb.GetTicketCacheRequest(user_id=42, view=pb.CACHE_VIEW_SUMMARY)
    )

    entries = list(response.cache.passes) + list(response.cache.passes4)
    assert len(entries) == 3
    assert all(e.WhichOneof("content") is None and e.payload_json == "" for e in entries)
    assert all(e.pass_uuid and e.payload_hash and e.status for e in entries)


async def test_reading_twice_gives_the_same_answer(grpc_server: RunningServer) -> None:
    # the second read is served from the memo of encoded entries
    request = pb.GetTicketCacheRequest(user_id=42, view=pb.CACHE_VIEW_FULL)

    first = await grpc_server.stub.GetTicketCache(request)
    second = await grpc_server.stub.GetTicketCache(request)

    assert first == second


async def test_an_unknown_view_is_an_invalid_argument_naming_view(grpc_server: RunningServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await grpc_server.stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=42, view=99))  # type: ignore[arg-type]

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "view" in (raised.value.details() or "")
    assert grpc_server.use_cases.calls == []  # rejected before any use case ran


async def test_a_missing_cache_is_not_found(grpc_server: RunningServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await grpc_server.stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=404))

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "404" in (raised.value.details() or "")
