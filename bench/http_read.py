"""GetTicketCache on the HTTP port (HTTP_LISTEN) beside the gRPC port, same server process, same
cached rider (200 passes; FULL view, or --view RAW: payloads as JSON text): Connect binary
(application/proto), Connect JSON (what curl sends) and gRPC-Web, against gRPC as the baseline. No
compression on either port (connectrpc's client asks for gzip by default; grpc's does not).

The figure that compares the ports is the server's CPU per call (ms), which does not depend on the
client library; calls per second are shown too, though the clients differ (grpc.aio versus
connectrpc's pyqwest). Rounds alternate the protocols so drift on the machine hits all alike; the
best round of each counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import grpc
import psutil
from common import emit, log, seed_tokens, start_sandbox, start_server, work_dir
from connectrpc.compat import google_protobuf_json_codec
from connectrpc.protocol import ProtocolType
from read import read_arguments

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from bytemark.ticketcache.v1.ticket_cache_connect import TicketCacheServiceClient
from devtools.ports import free_port

MAX_MESSAGE = 64 * 1024 * 1024
Call = Callable[[], Awaitable[object]]


async def _qps(call: Call, seconds: float, in_flight: int) -> float:
    for _ in range(20):
        await call()
    calls = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal calls
        while time.perf_counter() < deadline:
            await call()
            calls += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(in_flight)))
    return calls / (time.perf_counter() - started)


async def _measure(
    protocol: str, addresses: tuple[str, str], user_id: int, view: str, seconds: float, in_flight: int
) -> float:
    grpc_address, http_address = addresses
    request = pb.GetTicketCacheRequest(user_id=user_id, view=pb.CacheView.Value(f"CACHE_VIEW_{view}"))
    if protocol == "grpc":
        options = [("grpc.max_receive_message_length", MAX_MESSAGE)]
        async with grpc.aio.insecure_channel(grpc_address, options=options) as channel:
            stub = pb_grpc.TicketCacheServiceStub(channel)
            return await _qps(lambda: stub.GetTicketCache(request), seconds, in_flight)
    kinds = {
        "connect_proto": {},
        "connect_json": {"codec": google_protobuf_json_codec()},
        "grpc_web": {"protocol": ProtocolType.GRPC_WEB},
    }
    plain = {"accept_compression": (), "send_compression": None}
    async with TicketCacheServiceClient(f"http://{http_address}", **plain, **kinds[protocol]) as client:  # type: ignore[arg-type]
        return await _qps(lambda: client.get_ticket_cache(request), seconds, in_flight)


def run(
    passes: int, expired: int, view: str, seconds: float, rounds: int, in_flight: int
) -> list[dict[str, object]]:
    directory = work_dir("http-read")
    sandbox = start_sandbox(directory, users=0, latency_ms=0)
    http_address = f"127.0.0.1:{free_port()}"
    server = start_server(sandbox, directory, HTTP_LISTEN=http_address)
    try:
        creds = sandbox.create_user(passes=passes, expired=expired)
        user_id = int(creds["user_id"])
        seed_tokens(server.sqlite_path, [(user_id, creds["access_token"], creds["refresh_token"])])
        with grpc.insecure_channel(server.address) as channel:
            pb_grpc.TicketCacheServiceStub(channel).CheckTicketCache(
                pb.CheckTicketCacheRequest(user_id=user_id)
            )
        process = psutil.Process(server.pid)
        best: dict[str, tuple[float, float]] = {}  # protocol -> (qps, server cpu ms per call)
        for round_index in range(rounds):
            for protocol in ("grpc", "connect_proto", "connect_json", "grpc_web"):
                before = sum(process.cpu_times()[:2])
                qps = asyncio.run(
                    _measure(protocol, (server.address, http_address), user_id, view, seconds, in_flight)
                )
                cpu_ms = (sum(process.cpu_times()[:2]) - before) / (qps * seconds) * 1000
                log(f"http_read {view} round {round_index + 1}: {protocol} {qps:.0f} qps, {cpu_ms:.2f} ms")
                if protocol not in best or qps > best[protocol][0]:
                    best[protocol] = (qps, cpu_ms)
        grpc_qps, grpc_cpu = best["grpc"]
        return [
            emit(
                "http_read" if view == "FULL" else "http_read_raw",
                view=view,
                passes=passes + expired,
                baseline="grpc",
                baseline_qps=round(grpc_qps, 1),
                baseline_server_cpu_ms_per_call=round(grpc_cpu, 3),
                **{
                    f"{name}_qps": round(best[name][0], 1)
                    for name in ("connect_proto", "connect_json", "grpc_web")
                },
                **{
                    f"{name}_server_cpu_ms_per_call": round(best[name][1], 3)
                    for name in ("connect_proto", "connect_json", "grpc_web")
                },
                **{
                    f"{name}_cpu_ratio_vs_grpc": round(best[name][1] / grpc_cpu, 2)
                    for name in ("connect_proto", "connect_json", "grpc_web")
                },
                in_flight=in_flight,
                seconds_per_round=seconds,
                rounds=rounds,
            )
        ]
    finally:
        server.stop()
        sandbox.stop()


def main() -> None:
    parser = read_arguments()
    parser.add_argument("--view", choices=("FULL", "RAW"), default="FULL")
    args = parser.parse_args()
    run(args.passes, args.expired, args.view, args.seconds, args.rounds, args.in_flight)


if __name__ == "__main__":
    main()
