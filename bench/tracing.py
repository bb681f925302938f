"""What tracing costs the read path (GetTicketCache, FULL view, a cached rider with 200 passes).

Three `serve` processes on one machine, same client, rounds alternating between them so drift
hits all alike, the best round of each counting:
- off: no OTEL_* set (the default; the tracing interceptor is not in the chain);
- 10 %: OTEL_TRACES_SAMPLER=parentbased_traceidratio, ARG=0.1 (callers send no traceparent, so
  one read in ten is recorded: a server span and a store span);
- 100 %: every read recorded.
Spans go to a stand-in OTLP/HTTP receiver (bench/otlp_sink.py) in its own process.

With `--baseline-cli PATH` (another checkout's `.venv/bin/bytemark-ticket-cache`, e.g. main before
tracing), a fourth server, "today", runs that code: off against today is the cost of tracing-off.

Plus, in this process, what tracing-off adds to one read: the store-span check around each
SQLite statement, against the whole in-process read it wraps.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import psutil
from common import ROOT, Sandbox, emit, log, seed_tokens, start_sandbox, start_server, stop_process, work_dir
from read import CHANNEL_OPTIONS, _qps, read_arguments

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools import harness
from devtools.harness import ServerProcess

MODES = {
    "off": {},
    "ratio_0.1": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
    "ratio_1.0": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.0"},
}


def _start_sink() -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "otlp_sink.py")], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("port "):
        raise RuntimeError(f"OTLP sink did not start: {line!r}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}"


async def _cache(address: str, user_id: int) -> None:
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        await pb_grpc.TicketCacheServiceStub(channel).CheckTicketCache(
            pb.CheckTicketCacheRequest(user_id=user_id)
        )


def _off_path_cost(statements_per_read: int = 1, calls: int = 200_000) -> float:
    """Nanoseconds tracing-off adds per read: the store-span check (no span being recorded), per statement."""
    from adapters.driven.storage.spans import store_span

    sql = "SELECT timestamp, version, passes, passes4 FROM bytemark_ticket_caches WHERE user_id = ?"
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            with store_span("sqlite", sql):
                pass
        best = min(best, (time.perf_counter() - started) / calls)
    return best * statements_per_read * 1e9


def _start(sandbox: Sandbox, directory: Path, cli: str | None, **env: str) -> ServerProcess:
    """A server in its own directory; `cli` runs another checkout's code instead of this one."""
    directory.mkdir()
    default_cli = harness.CLI
    harness.CLI = cli or default_cli  # the harness starts whatever its CLI names
    try:
        return start_server(sandbox, directory, **env)
    finally:
        harness.CLI = default_cli


def run(
    passes: int, expired: int, seconds: float, rounds: int, in_flight: int, baseline_cli: str | None
) -> list[dict[str, object]]:
    directory = work_dir("tracing")
    sandbox = start_sandbox(directory, users=0, latency_ms=0)
    sink, sink_url = _start_sink()
    servers = {}
    try:
        creds = sandbox.create_user(passes=passes, expired=expired)
        user_id = int(creds["user_id"])
        modes = {**({"today": {}} if baseline_cli else {}), **MODES}
        for mode, env in modes.items():
            extra = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink_url, **env} if env else {}
            cli = baseline_cli if mode == "today" else None
            server = servers[mode] = _start(sandbox, directory / mode, cli, **extra)
            seed_tokens(server.sqlite_path, [(user_id, creds["access_token"], creds["refresh_token"])])
            asyncio.run(_cache(server.address, user_id))
        log(f"tracing: rider {user_id} cached with {passes + expired} passes on {len(servers)} servers")
        best = dict.fromkeys(modes, 0.0)
        cpu = dict.fromkeys(modes, 0.0)
        for round_index in range(rounds):
            for mode, server in servers.items():
                proc = psutil.Process(server.pid)
                before = sum(proc.cpu_times()[:2])
                qps = asyncio.run(_qps(server.address, user_id, pb.CACHE_VIEW_FULL, seconds, in_flight))
                used = (sum(proc.cpu_times()[:2]) - before) / seconds
                log(f"tracing round {round_index + 1}: {mode} {qps:.0f} qps (server cpu {used:.2f})")
                if qps > best[mode]:
                    best[mode], cpu[mode] = qps, used
        with urllib.request.urlopen(f"{sink_url}/stats", timeout=5) as response:
            exported = json.loads(response.read())
        off = best["off"]
        # Server CPU per read (microseconds) is steadier than qps on a busy machine: the client
        # shares the cores, and its share moves with the load.
        cpu_us = {
            f"cpu_us_per_read_{mode.replace('.', '_')}": round(cpu[mode] / best[mode] * 1e6, 1)
            for mode in modes
        }
        today = {"qps_today": round(best["today"], 1), "off_vs_today": round(off / best["today"], 3)}
        return [
            emit(
                "tracing_read",
                passes=passes + expired,
                **(today if baseline_cli else {}),
                qps_off=round(off, 1),
                qps_ratio_0_1=round(best["ratio_0.1"], 1),
                qps_ratio_1_0=round(best["ratio_1.0"], 1),
                ratio_0_1_vs_off=round(best["ratio_0.1"] / off, 3),
                ratio_1_0_vs_off=round(best["ratio_1.0"] / off, 3),
                server_cpu_off=round(cpu["off"], 2),
                server_cpu_ratio_0_1=round(cpu["ratio_0.1"], 2),
                server_cpu_ratio_1_0=round(cpu["ratio_1.0"], 2),
                **cpu_us,
                off_path_ns_per_read=round(_off_path_cost(), 1),
                otlp_exports=exported["exports"],
                otlp_bytes=exported["bytes"],
                in_flight=in_flight,
                seconds_per_round=seconds,
                rounds=rounds,
            )
        ]
    finally:
        for server in servers.values():
            server.stop()
        stop_process(sink)
        sandbox.stop()


def main() -> None:
    parser = read_arguments(rounds=3)
    parser.add_argument("--baseline-cli", help="another checkout's bytemark-ticket-cache, run as 'today'")
    args = parser.parse_args()
    run(args.passes, args.expired, args.seconds, args.rounds, args.in_flight, args.baseline_cli)


if __name__ == "__main__":
    main()
