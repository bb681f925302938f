"""GRPC_WORKERS=N: N `serve` processes sharing one port through SO_REUSEPORT, as gRPC's own
multiprocessing example does; the kernel spreads new connections over them.

The parent reserves the port (so port 0 means one port for all), forks the workers before any
event loop or gRPC object exists, forwards SIGTERM/SIGINT to them once, and exits with the worst
exit code. A worker that ends on its own (it could not start, or it crashed) stops the others: a
pod serving on half its workers would pass its probes while its capacity is gone, so the whole
process exits and Kubernetes restarts it.

Each worker is a whole service: its own loop, store connections, single-flight and metrics
(worker i serves /metrics on METRICS_LISTEN's port + i)."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.process import BaseProcess
from types import FrameType

from adapters.composition.settings import Settings, split_host_port

log = logging.getLogger(__name__)


@contextlib.contextmanager
def reserved_port(host: str, port: int) -> Iterator[int]:
    """Bind `host:port` with SO_REUSEPORT and hold it while the workers run (the port stays ours
    between their starts; port 0 picks one free port for all of them)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def worker_settings(settings: Settings, port: int, index: int) -> Settings:
    """Worker `index`'s settings: the reserved port, and its own metrics port."""
    host, _ = split_host_port(settings.grpc_listen)
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    update: dict[str, object] = {"grpc_listen": listen}
    if settings.metrics_listen:
        metrics_host, metrics_port = split_host_port(settings.metrics_listen)
        shifted = metrics_port + index if metrics_port else 0
        bracketed = f"[{metrics_host}]" if ":" in metrics_host else metrics_host
        update["metrics_listen"] = f"{bracketed}:{shifted}"
    return settings.model_copy(update=update)


def serve_in_workers(settings: Settings, serve_one: Callable[[Settings], int]) -> int:
    """Run `serve_one(worker settings)` in `settings.grpc_workers` forked processes; return the
    worst exit code once all have ended."""
    host, port = split_host_port(settings.grpc_listen)
    context = multiprocessing.get_context("fork")  # before any loop, thread or gRPC object exists
    with reserved_port(host, port) as bound:
        workers = [
            context.Process(
                target=_worker_main,
                args=(serve_one, worker_settings(settings, bound, index)),
                name=f"grpc-worker-{index}",
            )
            for index in range(settings.grpc_workers)
        ]
        for worker in workers:
            worker.start()
        log.info("serving gRPC in worker processes", extra={"workers": len(workers), "port": bound})
        stopping = False

        def stop(signum: int, _frame: FrameType | None) -> None:
            nonlocal stopping
            if stopping:
                return
            stopping = True
            for worker in workers:
                if worker.pid is not None and worker.exitcode is None:
                    os.kill(worker.pid, signal.SIGTERM)

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        ended_unasked = False
        try:
            first = _first_to_end(workers)
            if not stopping:
                ended_unasked = True
                log.error(
                    "a gRPC worker ended on its own; stopping the others",
                    extra={"worker": first.name, "exit_code": first.exitcode},
                )
                stop(signal.SIGTERM, None)
            for worker in workers:
                worker.join()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if ended_unasked:  # its code says why (the others only met our SIGTERM); never 0, "stopped as asked"
        return _exit_status(first.exitcode) or 1
    return max((_exit_status(worker.exitcode) for worker in workers), default=0)


def _exit_status(exitcode: int | None) -> int:
    """A worker's exit code as a shell reports it: a worker killed by signal N counts as 128 + N
    (multiprocessing says -N, which `sys.exit` would turn into 256 - N)."""
    if exitcode is None:
        return 0
    return 128 - exitcode if exitcode < 0 else exitcode


def _first_to_end(workers: Sequence[BaseProcess]) -> BaseProcess:
    """Block until some worker ends; return it (signals are handled meanwhile: wait retries EINTR)."""
    by_sentinel = {worker.sentinel: worker for worker in workers}
    ready = multiprocessing.connection.wait(list(by_sentinel))
    return by_sentinel[ready[0]]  # type: ignore[index]


def _worker_main(serve_one: Callable[[Settings], int], settings: Settings) -> None:
    # Its own process group: a terminal's Ctrl-C reaches the parent only, which sends one SIGTERM.
    os.setpgid(0, 0)
    sys.exit(serve_one(settings))
