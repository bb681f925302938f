"""Peak resident memory of a process, as a benchmark or a test watching a server sees it."""

from __future__ import annotations

import threading

import psutil  # type: ignore[import-untyped]  # no stubs published


class RssSampler:
    """Peak RSS of one process, sampled from a background thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self.peak = self._process.memory_info().rss
        self.start_rss = self.peak
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self._process.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(self._interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self.peak = max(self.peak, self._process.memory_info().rss)
        except psutil.Error:
            pass

    @property
    def growth(self) -> int:
        """How far the peak rose above the resident set at the start, in bytes."""
        return int(self.peak - self.start_rss)
