"""Bad and odd input against one real server process: every request message of the service
under property-based tests, oversized requests and metadata, and odd pass payloads cached
and hashed exactly as Node would.

Hypothesis budget: EXAMPLES valid-wire examples per request message plus WIRE_EXAMPLES raw
byte strings per method, against one server process (module fixture)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.harness import SERVICE, SandboxProcess, ServerProcess, start_server

EXAMPLES = 75
WIRE_EXAMPLES = 50
MAX_RSS_BYTES = 300 * 1024 * 1024
CALL_TIMEOUT = 10.0

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
MAX_AGE_LIMIT = 30 * 24 * 3600
MAX_CONCURRENCY = 512
MAX_SHARD_COUNT = 100_000
MAX_USER_IDS = 10_000
KNOWN_VIEWS = frozenset(pb.CacheView.values())

HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
WIRE_HYPOTHESIS = settings(HYPOTHESIS, max_examples=WIRE_EXAMPLES)
raw_bodies = st.one_of(st.binary(max_size=64), st.sampled_from([b"\xff", b"\x08", b"\x0a\xff\x01"]))
SERVICE_DESCRIPTOR = pb.DESCRIPTOR.services_by_name["TicketCacheService"]
ENDLESS_STREAMS = frozenset({"WatchChanges"})

int64s = st.one_of(
    st.sampled_from([0, -1, 1, INT64_MAX, -(2**63), 2**53 + 1, 2**31, -(2**31)]),
    st.integers(-(2**63), INT64_MAX),
)
int32s = st.one_of(
    st.sampled_from(
        [0, -1, 1, MAX_CONCURRENCY, MAX_CONCURRENCY + 1, MAX_SHARD_COUNT + 1, INT32_MAX, -(2**31)]
    ),
    st.integers(-(2**31), INT32_MAX),
)
max_ages = st.one_of(st.sampled_from([0, -1, 1, MAX_AGE_LIMIT, MAX_AGE_LIMIT + 1]), int64s)
views = st.one_of(st.sampled_from([0, 1, 2, 3, 4, -1, INT32_MAX, -(2**31)]), st.integers(-(2**31), INT32_MAX))
# Valid ids are mostly far above the sandbox's users, so a refresh finds no token (no Bytemark call).
user_ids_lists = st.lists(st.one_of(int64s, st.integers(2**40, 2**41)), max_size=20)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def channel(server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as sync_channel:
        yield sync_channel


@pytest.fixture(scope="module")
def client(channel: grpc.Channel) -> pb_grpc.TicketCacheServiceStub:
    return pb_grpc.TicketCacheServiceStub(channel)


# --- the oracle: which fields of a request are out of range --------------------------------


def view_problems(request: Any) -> list[str]:
    return [] if request.view in KNOWN_VIEWS else ["view"]


def user_id_problems(user_id: int, field: str = "user_id") -> list[str]:
    return [field] if user_id <= 0 else []


def max_age_problems(max_age: int) -> list[str]:
    return [] if max_age == 0 or 1 <= max_age <= MAX_AGE_LIMIT else ["max_age_seconds"]


def concurrency_problems(concurrency: int) -> list[str]:
    return [] if concurrency == 0 or 1 <= concurrency <= MAX_CONCURRENCY else ["concurrency"]


def shard_problems(index: int, count: int) -> list[str]:
    if not 0 <= count <= MAX_SHARD_COUNT:
        return ["shard_count"]
    if count == 0:
        return [] if index == 0 else ["shard_index"]
    return [] if 0 <= index < count else ["shard_index"]


def user_ids_problems(user_ids: list[int]) -> list[str]:
    if len(user_ids) > MAX_USER_IDS or any(u <= 0 for u in user_ids):
        return ["user_ids"]
    return []


def call(client: pb_grpc.TicketCacheServiceStub, method: str, request: Any) -> tuple[grpc.StatusCode, str]:
    """Make the call (draining a stream) and return its status code and details."""
    try:
        response = getattr(client, method)(request, timeout=CALL_TIMEOUT)
        if SERVICE_DESCRIPTOR.methods_by_name[method].server_streaming:
            drain(method, response)
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def drain(method: str, stream: Any) -> None:
    """Read a finite stream to its end; of the endless change feed, its first message."""
    if method in ENDLESS_STREAMS:
        next(iter(stream))
        stream.cancel()
    else:
        list(stream)


def assert_answered(
    status: tuple[grpc.StatusCode, str], problems: list[str], ok_codes: frozenset[grpc.StatusCode]
) -> None:
    code, details = status
    assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), details
    if problems:
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (problems, code, details)
        assert details.startswith(tuple(problems)), (problems, details)
    else:
        assert code in ok_codes, (code, details)


OK = frozenset({grpc.StatusCode.OK})
OK_OR_NOT_FOUND = frozenset({grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND})


# --- every request message, property-based ---------------------------------------------------


@HYPOTHESIS
@given(user_id=int64s, view=views)
def test_get_ticket_cache_rejects_every_bad_user_id_and_view_naming_the_field(
    client: pb_grpc.TicketCacheServiceStub, user_id: int, view: int
) -> None:
    request = pb.GetTicketCacheRequest(user_id=user_id, view=view)
    status = call(client, "GetTicketCache", request)
    assert_answered(status, view_problems(request) + user_id_problems(user_id), OK_OR_NOT_FOUND)


@pytest.mark.parametrize(
    ("method", "message", "ok_codes"),
    [
        ("BuildTicketCache", pb.BuildTicketCacheRequest, OK),
        ("CheckTicketCache", pb.CheckTicketCacheRequest, OK),
        ("UpdateTicketCache", pb.UpdateTicketCacheRequest, OK_OR_NOT_FOUND),
    ],
)
@HYPOTHESIS
@given(user_id=int64s, view=views, include_cache=st.booleans())
def test_single_user_refreshes_reject_every_bad_user_id_and_view_naming_the_field(
    client: pb_grpc.TicketCacheServiceStub,
    method: str,
    message: Callable[..., Any],
    ok_codes: frozenset[grpc.StatusCode],
    user_id: int,
    view: int,
    include_cache: bool,
) -> None:
    request = message(user_id=user_id, view=view, include_cache=include_cache)
    status = call(client, method, request)
    assert_answered(status, view_problems(request) + user_id_problems(user_id), ok_codes)


@HYPOTHESIS
@given(user_id=int64s, max_age=max_ages, view=views, include_cache=st.booleans())
def test_check_ticket_cache_timeout_rejects_every_bad_user_id_max_age_and_view_naming_the_field(
    client: pb_grpc.TicketCacheServiceStub, user_id: int, max_age: int, view: int, include_cache: bool
) -> None:
    request = pb.CheckTicketCacheTimeoutRequest(
        user_id=user_id, max_age_seconds=max_age, view=view, include_cache=include_cache
    )
    status = call(client, "CheckTicketCacheTimeout", request)
    problems = view_problems(request) + user_id_problems(user_id) + max_age_problems(max_age)
    assert_answered(status, problems, OK)


@HYPOTHESIS
@given(concurrency=int32s, view=views, include_cache=st.booleans())
def test_build_cache_if_empty_rejects_every_bad_concurrency_and_view_naming_the_field(
    client: pb_grpc.TicketCacheServiceStub, concurrency: int, view: int, include_cache: bool
) -> None:
    request = pb.BuildCacheIfEmptyRequest(concurrency=concurrency, view=view, include_cache=include_cache)
    status = call(client, "BuildCacheIfEmpty", request)
    assert_answered(status, view_problems(request) + concurrency_problems(concurrency), OK)


@HYPOTHESIS
@given(
    max_age=max_ages,
    concurrency=int32s,
    shard_index=int32s,
    shard_count=st.one_of(st.sampled_from([0, 1, 2, MAX_SHARD_COUNT, MAX_SHARD_COUNT + 1]), int32s),
    user_ids=user_ids_lists,
    view=views,
    include_cache=st.booleans(),
)
def test_refresh_stale_caches_rejects_every_bad_argument_naming_the_field(
    client: pb_grpc.TicketCacheServiceStub,
    max_age: int,
    concurrency: int,
    shard_index: int,
    shard_count: int,
    user_ids: list[int],
    view: int,
    include_cache: bool,
) -> None:
    request = pb.RefreshStaleCachesRequest(
        max_age_seconds=max_age,
        concurrency=concurrency,
        shard_index=shard_index,
        shard_count=shard_count,
        user_ids=user_ids,
        view=view,
        include_cache=include_cache,
    )
    status = call(client, "RefreshStaleCaches", request)
    problems = (
        view_problems(request)
        + max_age_problems(max_age)
        + concurrency_problems(concurrency)
        + shard_problems(shard_index, shard_count)
        + user_ids_problems(user_ids)
    )
    assert_answered(status, problems, OK)


@HYPOTHESIS
@given(dry_run=st.booleans())
def test_purge_orphaned_caches_answers_either_way(
    client: pb_grpc.TicketCacheServiceStub, dry_run: bool
) -> None:
    status = call(client, "PurgeOrphanedCaches", pb.PurgeOrphanedCachesRequest(dry_run=dry_run))
    assert_answered(status, [], OK)


KNOWN_SYNC_STATES = frozenset(pb.SyncState.values())
sync_states = st.one_of(st.sampled_from([0, 1, 2, 3, 4, -1, INT32_MAX]), st.integers(-(2**31), INT32_MAX))
page_tokens = st.one_of(st.just(""), st.text(max_size=40))


def as_page_token(value: Any) -> str:
    """A token as this service encodes one: unpadded urlsafe base64 of JSON."""
    text = value if isinstance(value, str) else json.dumps(value)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
# Token-shaped: right encoding, any JSON inside, or nested deeper than any parser should follow.
token_shaped = st.one_of(
    st.builds(
        lambda after, state: {"after": after, "state": state},
        st.one_of(int64s, st.integers(2**63, 2**80), st.floats(allow_nan=False)),
        st.sampled_from(["", "OK", "FAILING", "x"]),
    ),
    json_values,
    st.integers(1, 100_000).map(lambda depth: "[" * depth),
)


@HYPOTHESIS
@given(user_id=int64s)
def test_get_sync_status_rejects_every_bad_user_id_naming_the_field(
    client: pb_grpc.TicketCacheServiceStub, user_id: int
) -> None:
    status = call(client, "GetSyncStatus", pb.GetSyncStatusRequest(user_id=user_id))
    assert_answered(status, user_id_problems(user_id), OK_OR_NOT_FOUND)


@HYPOTHESIS
@given(state=sync_states, page_size=int32s, page_token=page_tokens)
def test_list_sync_statuses_rejects_every_bad_filter_page_size_and_token_naming_the_field(
    client: pb_grpc.TicketCacheServiceStub, state: int, page_size: int, page_token: str
) -> None:
    request = pb.ListSyncStatusesRequest(state=state, page_size=page_size, page_token=page_token)  # type: ignore[arg-type]
    problems = (
        ([] if state in KNOWN_SYNC_STATES else ["state"])
        + ([] if page_size >= 0 else ["page_size"])
        + ([] if page_token == "" else ["page_token"])  # this server issued none of these
    )
    assert_answered(call(client, "ListSyncStatuses", request), problems, OK)


@HYPOTHESIS
@given(
    start_cursor=st.one_of(
        st.just(""),
        st.text(max_size=30),
        st.integers(10**12, 2**70).map(lambda n: f"v1.{n}"),  # past any change this suite makes
        st.sampled_from(["v1.", "v1.-1", "v1.1e3", "v2.0", " v1.0", "v1.0\n", "v1.+1", "v1.1_0"]),
        # digits str.isdigit() and int() accept but no cursor ever held: '²', '٥', '５'
        st.text(
            st.characters(categories=["Nd", "No"], exclude_characters="0123456789"), min_size=1, max_size=4
        ).map(lambda digits: f"v1.{digits}"),
    ),
    user_ids=user_ids_lists,
)
def test_watch_changes_rejects_every_bad_cursor_and_user_id_naming_the_field(
    client: pb_grpc.TicketCacheServiceStub, start_cursor: str, user_ids: list[int]
) -> None:
    request = pb.WatchChangesRequest(start_cursor=start_cursor, user_ids=user_ids)
    status = call(client, "WatchChanges", request)
    # a well-formed cursor at or before the newest change is valid; this server's feed is near empty
    valid_cursor = start_cursor in ("", "v1.0")
    problems = user_ids_problems(user_ids) or ([] if valid_cursor else ["start_cursor"])
    assert_answered(status, problems, OK)


@HYPOTHESIS
@given(content=token_shaped)
def test_list_sync_statuses_refuses_every_page_token_it_could_not_have_issued_naming_it(
    client: pb_grpc.TicketCacheServiceStub, content: Any
) -> None:
    request = pb.ListSyncStatusesRequest(page_token=as_page_token(content))
    after = content.get("after") if isinstance(content, dict) else None
    issuable = (
        isinstance(content, dict)
        and content.get("state") == ""  # the request has no state filter
        and type(after) is int
        and 0 <= after <= INT64_MAX
    )
    assert_answered(call(client, "ListSyncStatuses", request), [] if issuable else ["page_token"], OK)


@pytest.mark.parametrize(
    ("method", "request_message", "field"),
    [
        ("WatchChanges", pb.WatchChangesRequest(start_cursor="v1.²"), "start_cursor"),
        ("WatchChanges", pb.WatchChangesRequest(start_cursor="v1.٥"), "start_cursor"),
        ("WatchChanges", pb.WatchChangesRequest(start_cursor="v1.５"), "start_cursor"),
        ("WatchChanges", pb.WatchChangesRequest(start_cursor="v1.٠"), "start_cursor"),
        (
            "ListSyncStatuses",
            pb.ListSyncStatusesRequest(page_token=as_page_token({"after": 2**63, "state": ""})),
            "page_token",
        ),
        (
            "ListSyncStatuses",
            pb.ListSyncStatusesRequest(page_token=as_page_token("[" * 100_000)),
            "page_token",
        ),
    ],
    ids=[
        "superscript-two",
        "arabic-indic-five",
        "fullwidth-five",
        "arabic-indic-zero",
        "after-2^63",
        "100k-brackets",
    ],
)
def test_the_reviewers_malformed_cursors_and_page_tokens_are_refused_naming_the_field(
    client: pb_grpc.TicketCacheServiceStub, method: str, request_message: Any, field: str
) -> None:
    status = call(client, method, request_message)

    assert_answered(status, [field], OK)
    assert "not a cursor this service issued" in status[1] or "not a token this service issued" in status[1]


def test_every_request_message_of_the_service_is_covered_by_a_property_test() -> None:
    covered = {
        "GetTicketCache",
        "BuildTicketCache",
        "CheckTicketCache",
        "UpdateTicketCache",
        "CheckTicketCacheTimeout",
        "BuildCacheIfEmpty",
        "RefreshStaleCaches",
        "PurgeOrphanedCaches",
        "GetSyncStatus",
        "ListSyncStatuses",
        "WatchChanges",
    }
    assert set(SERVICE_DESCRIPTOR.methods_by_name) == covered


@pytest.mark.parametrize("method", list(SERVICE_DESCRIPTOR.methods_by_name))
@WIRE_HYPOTHESIS
@given(body=raw_bodies)
def test_raw_request_bytes_never_end_in_internal_or_unknown(
    channel: grpc.Channel, method: str, body: bytes
) -> None:
    descriptor = SERVICE_DESCRIPTOR.methods_by_name[method]
    path = f"/{SERVICE}/{method}"
    try:
        if descriptor.server_streaming:
            drain(method, channel.unary_stream(path)(body, timeout=CALL_TIMEOUT))
        else:
            channel.unary_unary(path)(body, timeout=CALL_TIMEOUT)
    except grpc.RpcError as error:
        assert error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), (
            error.code(),
            error.details(),
        )
        if error.details().startswith("request: "):
            assert descriptor.input_type.full_name in error.details()


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
@WIRE_HYPOTHESIS
@given(body=raw_bodies)
def test_raw_reflection_request_bytes_never_end_in_internal_or_unknown(
    channel: grpc.Channel, version: str, body: bytes
) -> None:
    info = channel.stream_stream(f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo")
    try:
        list(info(iter([body]), timeout=CALL_TIMEOUT))
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
        assert "ServerReflectionRequest" in error.details()


# --- sizes ---------------------------------------------------------------------------------


def test_more_than_ten_thousand_user_ids_are_rejected_naming_user_ids(
    client: pb_grpc.TicketCacheServiceStub,
) -> None:
    for count in (MAX_USER_IDS + 1, 200_000):
        request = pb.RefreshStaleCachesRequest(user_ids=range(1, count + 1))
        code, details = call(client, "RefreshStaleCaches", request)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert details.startswith("user_ids:") and str(count) in details


def test_exactly_ten_thousand_user_ids_are_accepted_and_a_bad_last_one_is_named(
    client: pb_grpc.TicketCacheServiceStub,
) -> None:
    # Shard 99,999 of 100,000 owns none of 1..10,000, so the run itself is empty.
    request = pb.RefreshStaleCachesRequest(
        user_ids=range(1, MAX_USER_IDS + 1), shard_index=MAX_SHARD_COUNT - 1, shard_count=MAX_SHARD_COUNT
    )
    events = list(client.RefreshStaleCaches(request, timeout=CALL_TIMEOUT))
    request.user_ids[-1] = -5
    code, details = call(client, "RefreshStaleCaches", request)

    assert events == []
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith(f"user_ids[{MAX_USER_IDS - 1}]:")


@pytest.mark.parametrize("header", ["x-padding", "x-request-id", "authorization"])
def test_a_hundred_kilobyte_header_is_refused_as_resource_exhausted(
    client: pb_grpc.TicketCacheServiceStub, header: str
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        client.GetTicketCache(
            pb.GetTicketCacheRequest(user_id=1), metadata=((header, "a" * 100_000),), timeout=CALL_TIMEOUT
        )
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


# --- odd pass payloads: cached exactly, hashed as Node does -------------------------------------

INDEX_LIKE_KEYS = {
    "10": 1,
    "2": 2,
    "b": 3,
    "1": 4,
    "01": 5,
    "4294967295": 6,
    "4294967294": 7,
    "-1": 8,
    "a": 9,
}


def nested_objects(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": True}
    for level in range(depth):
        value = {f"level{level}": value}
    return value


def nested_arrays(depth: int) -> list[Any]:
    value: list[Any] = [1]
    for _ in range(depth):
        value = [value]
    return value


ODD_PAYLOADS: dict[str, dict[str, Any]] = {
    "nulls": {"status": None, "product_uuid": None, "time_created": None, "a": [None, {"b": None}]},
    "unicode": {
        "status": "USABLE",
        "name": "Tarjeta 🎫 günstig 票 \u0301e \u2028\u2029 \x7f",
        "controls": '\x00\x01\x1f\b\f\n\r\t"\\/',
        "emoji_key_🚇": "👩\u200d👩\u200d👧",
    },
    "numbers": {
        "past_2_53": 2**53 + 1,
        "negative_past_2_53": -(2**53 + 3),
        "int64_max": INT64_MAX,
        "int64_min": -(2**63),
        "uint64_max": 2**64 - 1,
        "floats": [1.0, -0.0, 0.1, 1e21, 1e20, 1.5e-7, 5e-324, 1.7976931348623157e308, 123456789.125],
    },
    "index_like_keys": INDEX_LIKE_KEYS,
    "deep_objects": {"status": "USABLE", "tree": nested_objects(150)},
    "deep_arrays": {"status": "USABLE", "tree": nested_arrays(150)},
    "huge": {"status": "USABLE", "blob": "x" * 1_000_000 + "é"},
}
# The sandbox parses bodies with orjson, which turns integers past 64 bits into doubles, so
# such integers reach the service as doubles (the exact path is covered by unit tests).
BEYOND_64_BITS = {"past_2_64": 2**64 + 1, "huge": 10**30}


@pytest.fixture(scope="module")
def payload_server(sandbox: SandboxProcess, work_dir: Path) -> Iterator[ServerProcess]:
    """A server of its own, so these caches never meet the property tests' bulk runs."""
    process = start_server(sandbox, work_dir)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def odd_user(payload_server: ServerProcess, sandbox: SandboxProcess) -> int:
    user_id = payload_server.seed_user(sandbox, passes=0, expired=0)
    for name, payload in {**ODD_PAYLOADS, "beyond_64_bits": BEYOND_64_BITS}.items():
        sandbox.call("POST", f"/_sandbox/users/{user_id}/passes", {"uuid": f"odd-{name}", **payload})
    return user_id


@pytest.fixture(scope="module")
def payload_client(payload_server: ServerProcess) -> Iterator[pb_grpc.TicketCacheServiceStub]:
    with grpc.insecure_channel(
        payload_server.address, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    ) as channel:
        yield pb_grpc.TicketCacheServiceStub(channel)


NODE_HASHES = """
const crypto = require("crypto");
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const hashes = JSON.parse(input).map((text) =>
    crypto.createHash("md5").update(JSON.stringify(JSON.parse(text)), "utf8").digest("hex"));
  process.stdout.write(JSON.stringify(hashes));
});
"""


def node_hashes(texts: list[str]) -> list[str]:
    """md5(JSON.stringify(JSON.parse(text))) per text, computed by Node in one process."""
    done = subprocess.run(
        ["node", "-e", NODE_HASHES], input=json.dumps(texts), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_odd_payloads_are_cached_exactly_and_hashed_as_node_hashes_them(
    payload_client: pb_grpc.TicketCacheServiceStub, odd_user: int
) -> None:
    built = payload_client.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=odd_user), timeout=30)
    cache = payload_client.GetTicketCache(
        pb.GetTicketCacheRequest(user_id=odd_user, view=pb.CACHE_VIEW_RAW), timeout=30
    ).cache
    again = payload_client.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=odd_user), timeout=30)

    entries = {entry.pass_uuid: entry for entry in cache.passes}
    assert built.result.outcome == pb.OUTCOME_BUILT
    assert set(entries) == {f"odd-{name}" for name in [*ODD_PAYLOADS, "beyond_64_bits"]}
    for name, payload in ODD_PAYLOADS.items():
        cached = json.loads(entries[f"odd-{name}"].payload_json)
        assert cached == {"uuid": f"odd-{name}", **payload}, name  # integers past 2^53 exact
        assert list(cached) == ["uuid", *payload], name  # key order as received
    numbers = json.loads(entries["odd-numbers"].payload_json)
    assert isinstance(numbers["uint64_max"], int) and numbers["uint64_max"] == 2**64 - 1
    assert len(entries["odd-huge"].payload_json) > 1_000_000
    texts = [entry.payload_json for entry in entries.values()]
    assert node_hashes(texts) == [entry.payload_hash for entry in entries.values()]
    # Re-fetched unchanged, every hash matches the stored one.
    assert again.result.outcome == pb.OUTCOME_UNCHANGED
    assert again.result.counts.changed == 0


def test_index_like_keys_are_hashed_in_javascript_property_order(
    payload_client: pb_grpc.TicketCacheServiceStub, odd_user: int
) -> None:
    payload_client.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=odd_user), timeout=30)
    cache = payload_client.GetTicketCache(
        pb.GetTicketCacheRequest(user_id=odd_user, view=pb.CACHE_VIEW_RAW), timeout=30
    ).cache
    entry = next(e for e in cache.passes if e.pass_uuid == "odd-index_like_keys")

    # Array-index keys first in ascending order, then the rest in insertion order (Node's rule).
    js_order = (
        '{"1":4,"2":2,"10":1,"4294967294":7,'
        '"uuid":"odd-index_like_keys","b":3,"01":5,"4294967295":6,"-1":8,"a":9}'
    )
    assert entry.payload_hash == hashlib.md5(js_order.encode()).hexdigest()


def test_the_summary_view_of_odd_payloads_carries_hashes_without_payloads(
    payload_client: pb_grpc.TicketCacheServiceStub, odd_user: int
) -> None:
    payload_client.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=odd_user), timeout=30)
    summary = payload_client.GetTicketCache(
        pb.GetTicketCacheRequest(user_id=odd_user, view=pb.CACHE_VIEW_SUMMARY), timeout=30
    ).cache
    hashes = {entry.pass_uuid: entry.payload_hash for entry in summary.passes}

    assert len(hashes) == len(ODD_PAYLOADS) + 1
    assert all(entry.WhichOneof("content") is None for entry in summary.passes)


def test_the_full_view_sends_a_payload_too_deep_for_a_struct_as_json_text(
    payload_client: pb_grpc.TicketCacheServiceStub, odd_user: int
) -> None:
    # protobuf decodes at most 100 nested messages and a Struct spends 3 per JSON level, so a
    # 150-deep payload cannot be a Struct: the FULL view sends it as payload_json instead.
    payload_client.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=odd_user), timeout=30)
    full = payload_client.GetTicketCache(
        pb.GetTicketCacheRequest(user_id=odd_user, view=pb.CACHE_VIEW_FULL), timeout=30
    ).cache
    raw = payload_client.GetTicketCache(
        pb.GetTicketCacheRequest(user_id=odd_user, view=pb.CACHE_VIEW_RAW), timeout=30
    ).cache
    raw_json = {e.pass_uuid: e.payload_json for e in raw.passes}
    contents = {e.pass_uuid: e.WhichOneof("content") for e in full.passes}

    for deep in ("odd-deep_objects", "odd-deep_arrays"):
        assert contents[deep] == "payload_json"
        entry = next(e for e in full.passes if e.pass_uuid == deep)
        assert entry.payload_json == raw_json[deep]
    assert contents["odd-index_like_keys"] == "payload"


def test_the_sandbox_cannot_carry_a_lone_surrogate_so_unit_vectors_cover_it(
    sandbox: SandboxProcess, odd_user: int
) -> None:
    # json.dumps writes "\\ud800", which the sandbox's orjson refuses (HTTP 400).
    with pytest.raises(Exception, match="400"):
        sandbox.call("POST", f"/_sandbox/users/{odd_user}/passes", {"uuid": "odd-surrogate", "s": "\ud800"})


# --- afterwards ----------------------------------------------------------------------------


def test_after_all_that_the_server_is_still_serving_with_bounded_memory(
    channel: grpc.Channel, server: ServerProcess
) -> None:
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    rss = psutil.Process(server.proc.pid).memory_info().rss

    assert server.proc.poll() is None
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert rss < MAX_RSS_BYTES, f"server RSS {rss / 2**20:.0f} MiB"
