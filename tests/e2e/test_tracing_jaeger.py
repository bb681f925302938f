"""Traces reach a real Jaeger (v1.75.0, built by `make jaeger`): a call sent with a W3C
traceparent shows up in Jaeger's query API under the caller's trace id, as the RPC's server span
with a Bytemark client span and a store span beneath it, and no token in any of it."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc
from devtools.harness import CLI, SandboxProcess, ServerProcess, start_server, wait_until
from devtools.jaeger import Jaeger, JaegerMissing

SERVER_SPAN = "bytemark.ticketcache.v1.TicketCacheService/BuildTicketCache"
TRACE_WAIT_SECONDS = 30


@pytest.fixture(scope="module")
def jaeger(work_dir: Path) -> Iterator[Jaeger]:
    try:
        process = Jaeger(work_dir / "jaeger").start()
    except JaegerMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def server(sandbox: SandboxProcess, work_dir: Path, jaeger: Jaeger) -> Iterator[ServerProcess]:
    process = start_server(
        sandbox,
        work_dir,
        OTEL_EXPORTER_OTLP_ENDPOINT=jaeger.otlp_http_url,
        OTEL_BSP_SCHEDULE_DELAY="100",  # ms: export soon after a span ends, not after 5 s
    )
    yield process
    process.stop()


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span.get("tags", [])}


def _descendants(spans: list[dict[str, Any]], root: dict[str, Any]) -> list[dict[str, Any]]:
    children: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        for reference in span.get("references", []):
            if reference["refType"] == "CHILD_OF":
                children.setdefault(reference["spanID"], []).append(span)
    found, todo = [], [root["spanID"]]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child["spanID"])
    return found


def _complete(trace: dict[str, Any] | None) -> bool:
    """The server span is there with a Bytemark (HTTP client) span and a store span beneath it."""
    if trace is None:
        return False
    servers = [span for span in trace["spans"] if span["operationName"] == SERVER_SPAN]
    if not servers:
        return False
    beneath = [_tags(span) for span in _descendants(trace["spans"], servers[0])]
    bytemark = any(
        tags.get("span.kind") == "client" and ("http.method" in tags or "http.request.method" in tags)
        for tags in beneath
    )
    store = any("db.system.name" in tags for tags in beneath)
    return bytemark and store


def test_a_call_with_a_traceparent_is_one_trace_in_jaeger(
    server: ServerProcess, sandbox: SandboxProcess, jaeger: Jaeger
) -> None:
    credentials = sandbox.create_user(passes=3, expired=1)
    user_id = int(credentials["user_id"])
    server.seed_token(user_id, credentials["access_token"], credentials["refresh_token"])
    trace_id, caller_span_id = secrets.token_hex(16), secrets.token_hex(8)

    with grpc.insecure_channel(server.address) as channel:
        ticket_cache_pb2_grpc.TicketCacheServiceStub(channel).BuildTicketCache(
            pb.BuildTicketCacheRequest(user_id=user_id),
            metadata=(("traceparent", f"00-{trace_id}-{caller_span_id}-01"),),
            timeout=30,
        )

    assert jaeger.proc is not None
    wait_until(
        lambda: _complete(jaeger.trace(trace_id)),
        TRACE_WAIT_SECONDS,
        "the trace in Jaeger",
        jaeger.proc,
        jaeger.log_path,
    )
    trace = jaeger.trace(trace_id)
    assert trace is not None, f"no trace {trace_id} in Jaeger\n{jaeger.logs()[-2000:]}"
    assert _complete(trace), [span["operationName"] for span in trace["spans"]]
    server_span = next(span for span in trace["spans"] if span["operationName"] == SERVER_SPAN)
    assert server_span["traceID"] == trace_id
    assert [ref["spanID"] for ref in server_span["references"]] == [caller_span_id]
    assert _tags(server_span)["span.kind"] == "server"
    service = trace["processes"][server_span["processID"]]["serviceName"]
    assert service == "bytemark-ticket-cache"
    exported = json.dumps(trace)
    for secret in (credentials["access_token"], credentials["refresh_token"], "sandbox-secret"):
        assert secret not in exported


def test_worker_processes_trace_and_send_their_last_spans_on_shutdown(
    sandbox: SandboxProcess, work_dir: Path, jaeger: Jaeger
) -> None:
    """GRPC_WORKERS=2 (tracing set up in each worker after the fork), spans held back by a long
    export delay: they reach Jaeger because each worker flushes them as it stops."""
    workers = start_server(
        sandbox,
        work_dir,
        GRPC_WORKERS="2",
        OTEL_EXPORTER_OTLP_ENDPOINT=jaeger.otlp_grpc_url,
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_BSP_SCHEDULE_DELAY="600000",  # 10 min: nothing leaves before the shutdown
    )
    trace_ids = [secrets.token_hex(16) for _ in range(4)]
    try:
        # start_server returns once one worker listens; a worker still starting dies of SIGTERM
        both_listening = lambda: workers.logs().count("listening on") >= 2  # noqa: E731
        wait_until(both_listening, 90, "both gRPC workers", workers.proc, workers.log_path)
        for trace_id in trace_ids:  # a channel each: the kernel spreads connections over the workers
            with grpc.insecure_channel(workers.address) as channel, pytest.raises(grpc.RpcError) as missing:
                ticket_cache_pb2_grpc.TicketCacheServiceStub(channel).GetSyncStatus(
                    pb.GetSyncStatusRequest(user_id=987_654_321),
                    metadata=(("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01"),),
                    timeout=30,
                )
            assert missing.value.code() is grpc.StatusCode.NOT_FOUND  # traced all the same
    finally:
        workers.stop()

    assert workers.proc.returncode == 0, workers.logs()[-2000:]
    assert jaeger.proc is not None
    flushed = lambda: all(jaeger.trace(trace_id) is not None for trace_id in trace_ids)  # noqa: E731
    wait_until(flushed, TRACE_WAIT_SECONDS, "the workers' traces in Jaeger", jaeger.proc, jaeger.log_path)


def test_a_refresh_job_is_one_run_span_and_a_trace_per_rider(
    server: ServerProcess, sandbox: SandboxProcess, jaeger: Jaeger
) -> None:
    """`run refresh-stale` (the CronJob's process): the run's span and each rider's trace reach
    Jaeger, sent as the process exits."""
    riders = [server.seed_user(sandbox, passes=2, expired=1) for _ in range(3)]
    env = {
        **server.env,
        "OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.otlp_http_url,
        "OTEL_SERVICE_NAME": "refresh-job",
    }

    job = subprocess.run([CLI, "run", "refresh-stale", "--json"], env=env, capture_output=True, timeout=120)

    assert job.returncode == 0, job.stderr.decode()[-2000:]
    assert jaeger.proc is not None

    def rider_spans() -> list[dict[str, Any]]:
        return [
            span
            for found in jaeger.traces("refresh-job", "bulk refresh_stale rider")
            for span in found["spans"]
            if span["operationName"] == "bulk refresh_stale rider"
        ]

    def riders_seen() -> set[int]:
        return {int(_tags(span)["ticket_cache.user_id"]) for span in rider_spans()}

    wait_until(lambda: set(riders) <= riders_seen(), TRACE_WAIT_SECONDS, "the riders' traces", jaeger.proc)
    runs = jaeger.traces("refresh-job", "bulk refresh_stale")
    assert len(runs) == 1
    run_span = next(span for span in runs[0]["spans"] if span["operationName"] == "bulk refresh_stale")
    for rider in rider_spans():
        assert rider["traceID"] != run_span["traceID"]  # a trace of its own, linked to the run
        assert (run_span["traceID"], run_span["spanID"]) in {
            (r["traceID"], r["spanID"]) for r in rider["references"]
        }
