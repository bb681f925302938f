"""A bare grpc.aio server answering GetTicketCache with pre-built responses (the read baseline).

No interceptors, no use cases, no store: the floor for what a grpc.aio server in this process
model can deliver. Usage: bare_server.py RESPONSES_DIR (files `<view>.bin` are serialized
GetTicketCacheResponse messages); prints `port N` once serving, stops on SIGTERM.
With `--interceptors`, the service's own interceptor chain (metrics, request id, malformed
request guard) wraps the bare handler: a diagnostic of what the chain costs.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import grpc

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc


class BareServicer(pb_grpc.TicketCacheServiceServicer):
    def __init__(self, responses: dict[int, pb.GetTicketCacheResponse]) -> None:
        self._responses = responses

    async def GetTicketCache(
        self, request: pb.GetTicketCacheRequest, context: Any
    ) -> pb.GetTicketCacheResponse:
        return self._responses[request.view or pb.CACHE_VIEW_FULL]


def load(directory: Path) -> dict[int, pb.GetTicketCacheResponse]:
    return {
        int(path.stem): pb.GetTicketCacheResponse.FromString(path.read_bytes())
        for path in directory.glob("*.bin")
    }


def _interceptors() -> list[Any]:
    from adapters.driving.grpc_api.interceptors import ServiceInterceptor

    return [ServiceInterceptor()]  # what the real server registers (auth off, as in the benchmark)


async def main(responses: dict[int, pb.GetTicketCacheResponse], with_interceptors: bool) -> None:
    size = 64 * 1024 * 1024
    server = grpc.aio.server(
        interceptors=_interceptors() if with_interceptors else None,
        options=[("grpc.max_send_message_length", size), ("grpc.max_receive_message_length", size)],
    )
    pb_grpc.add_TicketCacheServiceServicer_to_server(BareServicer(responses), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"port {port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop(0.5)


if __name__ == "__main__":
    asyncio.run(main(load(Path(sys.argv[1])), "--interceptors" in sys.argv[2:]))
