"""Free local ports for the processes tests and benches start, picked below the kernel's
ephemeral range.

A port from bind(0) is an ephemeral port: once released, any outgoing connection on the machine
(another xdist worker's client, a MariaDB connection) may take it before our server binds it, and
the server then fails with "address in use". Outgoing connections never use ports below the
ephemeral range, so a free port there stays free until a listener of ours takes it."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10000  # above the well-known and most registered service ports
_handed_out: set[int] = set()  # never give one process the same port twice


def _first_ephemeral_port() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _this_workers_share(lowest: int, highest: int) -> tuple[int, int]:
    """Each pytest-xdist worker picks from its own slice: two workers' picks could otherwise meet
    in the moment between one's pick and its server's bind, which no bind check can see."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not (worker.startswith("gw") and worker[2:].isdigit() and count.isdigit() and int(count) > 1):
        return lowest, highest
    span = (highest - lowest) // int(count)
    start = lowest + int(worker[2:]) * span
    return start, start + span - 1


def free_port(consecutive: int = 1) -> int:
    """A port p, nothing bound on p .. p+consecutive-1 (a GRPC_WORKERS server's metrics ports)."""
    highest = _first_ephemeral_port() - consecutive
    if highest <= _LOWEST:
        raise RuntimeError(f"no room for ports below the ephemeral range ({_EPHEMERAL_RANGE})")
    lowest, highest = _this_workers_share(_LOWEST, highest)
    for _ in range(200):
        port = random.randint(lowest, highest)
        wanted = range(port, port + consecutive)
        if _handed_out.isdisjoint(wanted) and all(_bindable(p) for p in wanted):
            _handed_out.update(wanted)
            return port
    raise RuntimeError(f"no {consecutive} free consecutive port(s) in {lowest}..{highest}")
