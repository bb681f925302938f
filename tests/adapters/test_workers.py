"""GRPC_WORKERS supervision: a worker that ends on its own takes the whole process down with its
exit code, so Kubernetes restarts a pod instead of keeping it serving on half its workers."""

from __future__ import annotations

import os
import signal
import time

from adapters.composition.settings import Settings, load_settings, split_host_port
from adapters.driving.workers import serve_in_workers

METRICS_BASE = 40000  # never bound here: it only tells each forked worker its index (port + index)
SETTINGS = load_settings(
    {"GRPC_WORKERS": "3", "GRPC_LISTEN": "127.0.0.1:0", "METRICS_LISTEN": f"127.0.0.1:{METRICS_BASE}"}
)


def index_of(worker: Settings) -> int:
    assert worker.metrics_listen is not None
    return split_host_port(worker.metrics_listen)[1] - METRICS_BASE


def worker_1_cannot_start(worker: Settings) -> int:
    if index_of(worker) == 1:
        return 3  # what `serve` returns when it cannot start, e.g. its metrics port is taken
    time.sleep(60)  # the others serve until a SIGTERM ends them
    return 0


def worker_1_returns_zero_early(worker: Settings) -> int:
    if index_of(worker) == 1:
        return 0
    time.sleep(60)
    return 0


def test_a_worker_that_cannot_start_stops_the_others_and_the_process_exits_with_its_code() -> None:
    started = time.monotonic()
    assert serve_in_workers(SETTINGS, worker_1_cannot_start) == 3
    assert time.monotonic() - started < 30  # the sleeping workers were stopped, not waited out


def test_a_worker_that_ends_unasked_with_zero_is_still_a_failure() -> None:
    started = time.monotonic()
    assert serve_in_workers(SETTINGS, worker_1_returns_zero_early) == 1
    assert time.monotonic() - started < 30


def worker_1_is_killed(worker: Settings) -> int:
    if index_of(worker) == 1:
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would
    time.sleep(60)
    return 0


def test_a_worker_killed_by_a_signal_ends_the_process_with_128_plus_the_signal() -> None:
    assert serve_in_workers(SETTINGS, worker_1_is_killed) == 128 + signal.SIGKILL
