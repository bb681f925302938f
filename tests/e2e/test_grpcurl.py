"""What an operator sees with the real grpcurl binary (reflection, no .proto files) against the
real server process."""

from __future__ import annotations

import json
import re
from typing import Any

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from devtools.harness import SERVICE, SandboxProcess, ServerProcess, grpcurl

#: grpcurl exits with 64 + the gRPC status code when the call fails.
EXIT_INVALID_ARGUMENT = 64 + 3


def call(server: ServerProcess, method: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Run one RPC; answer the JSON objects grpcurl printed (one per response message)."""
    done = grpcurl("-plaintext", "-d", json.dumps(body), server.address, f"{SERVICE}/{method}")
    assert done.returncode == 0, done.stderr
    return json_objects(done.stdout)


def json_objects(text: str) -> list[dict[str, Any]]:
    """Split grpcurl's output: pretty-printed JSON objects one after another."""
    decoder = json.JSONDecoder()
    objects, position = [], 0
    while (position := _skip_space(text, position)) < len(text):
        obj, position = decoder.raw_decode(text, position)
        objects.append(obj)
    return objects


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def test_list_shows_the_service_health_and_reflection(server: ServerProcess) -> None:
    done = grpcurl("-plaintext", server.address, "list")

    assert done.returncode == 0, done.stderr
    services = set(done.stdout.split())
    assert {SERVICE, "grpc.health.v1.Health"} <= services
    assert any(s.startswith("grpc.reflection.") for s in services)


def test_reflection_v1_is_served_beside_v1alpha(server: ServerProcess) -> None:
    listed = grpcurl("-plaintext", server.address, "list")
    # grpcurl 1.8.6 speaks v1alpha; it learns v1's schema from it, then calls v1 itself.
    v1 = grpcurl(
        "-plaintext",
        "-d",
        '{"list_services": ""}',
        server.address,
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    )

    assert listed.returncode == 0, listed.stderr
    assert {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} <= set(
        listed.stdout.split()
    )
    assert v1.returncode == 0, v1.stderr
    [answer] = json_objects(v1.stdout)
    assert SERVICE in {s["name"] for s in answer["list_services_response"]["service"]}


def test_describe_shows_every_rpc_of_the_service(server: ServerProcess) -> None:
    done = grpcurl("-plaintext", server.address, "describe", SERVICE)

    assert done.returncode == 0, done.stderr
    described = dict(re.findall(r"rpc (\w+) \( \.[\w.]+ \) returns \( (stream )?\.[\w.]+ \)", done.stdout))
    methods = pb.DESCRIPTOR.services_by_name["TicketCacheService"].methods
    assert set(described) == {m.name for m in methods}
    assert {name for name, stream in described.items() if stream} == {
        "BuildCacheIfEmpty",
        "RefreshStaleCaches",
        "WatchChanges",
    }


def test_health_check_says_serving(server: ServerProcess) -> None:
    done = grpcurl("-plaintext", server.address, "grpc.health.v1.Health/Check")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"status": "SERVING"}


def test_check_then_get_print_readable_json(server: ServerProcess, sandbox: SandboxProcess) -> None:
    user_id = server.seed_user(sandbox, passes=3, expired=1)

    (checked,) = call(server, "CheckTicketCache", {"user_id": user_id})
    (full,) = call(server, "GetTicketCache", {"user_id": user_id})
    (raw,) = call(server, "GetTicketCache", {"user_id": user_id, "view": "CACHE_VIEW_RAW"})
    (summary,) = call(server, "GetTicketCache", {"user_id": user_id, "view": "CACHE_VIEW_SUMMARY"})

    result = checked["result"]
    assert result["user_id"] == str(user_id)  # int64 prints as a JSON string
    assert result["outcome"] == "OUTCOME_BUILT"
    assert result["counts"] == {"passes": 3, "passes4": 1}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result["refreshed_at"])
    cache = full["cache"]
    assert (cache["user_id"], cache["timestamp"]) == (str(user_id), result["refreshed_at"])
    assert [len(cache["passes"]), len(cache["passes4"])] == [3, 1]
    for entry in cache["passes"]:
        assert entry["payload"]["uuid"] == entry["pass_uuid"]  # a readable object, not text
        assert re.fullmatch(r"[0-9a-f]{32}", entry["payload_hash"])
    for entry, raw_entry in zip(cache["passes"], raw["cache"]["passes"], strict=True):
        assert json.loads(raw_entry["payload_json"]) == entry["payload"]
        assert "payload" not in raw_entry
    assert all("payload" not in e and "payload_json" not in e for e in summary["cache"]["passes"])
    assert [e["pass_uuid"] for e in summary["cache"]["passes"]] == [e["pass_uuid"] for e in cache["passes"]]


def test_refresh_stale_stream_prints_one_json_object_per_rider(
    server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_ids = [server.seed_user(sandbox, passes=1, expired=0) for _ in range(3)]

    events = call(
        server, "RefreshStaleCaches", {"user_ids": user_ids, "max_age_seconds": 60, "concurrency": 2}
    )
    again = call(server, "RefreshStaleCaches", {"user_ids": user_ids, "max_age_seconds": 60})

    assert [e["done"] for e in events] == ["1", "2", "3"]
    assert {e["total"] for e in events} == {"3"}
    assert all("failed" not in e for e in events)  # zero is not printed
    assert sorted(int(e["user_id"]) for e in events) == sorted(user_ids)
    assert {e["result"]["outcome"] for e in events} == {"OUTCOME_BUILT"}
    assert {e["result"]["outcome"] for e in again} == {"OUTCOME_FRESH"}


def test_an_invalid_argument_exits_with_its_code_and_names_the_field(server: ServerProcess) -> None:
    get = grpcurl("-plaintext", "-d", '{"user_id": 0}', server.address, f"{SERVICE}/GetTicketCache")
    shard = grpcurl(
        "-plaintext",
        "-d",
        '{"shard_index": 3, "shard_count": 2}',
        server.address,
        f"{SERVICE}/RefreshStaleCaches",
    )

    assert get.returncode == shard.returncode == EXIT_INVALID_ARGUMENT
    assert "Code: InvalidArgument" in get.stderr and "Message: user_id:" in get.stderr
    assert "Code: InvalidArgument" in shard.stderr and "Message: shard_index:" in shard.stderr
    assert grpcurl("-plaintext", server.address, "grpc.health.v1.Health/Check").returncode == 0
