"""Start, kill and restart a real FerretDB v1 process (MongoDB wire protocol over SQLite) for tests
and benchmarks. The binary is `.tools/ferretdb`, built by `make ferretdb` from tools/ferretdb/."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from devtools.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
#: FERRETDB_BIN overrides the path, e.g. for a FerretDB installed elsewhere.
FERRETDB_BIN = Path(os.environ.get("FERRETDB_BIN", REPO_ROOT / ".tools" / "ferretdb"))
BUILD_HINT = "run `make ferretdb` (needs Go; builds tools/ferretdb into .tools/ferretdb)"


class FerretDBMissing(RuntimeError):
    def __init__(self, path: Path) -> None:
        super().__init__(f"FerretDB binary not found at {path}: {BUILD_HINT}")


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class FerretDB:
    """One FerretDB process with its SQLite files in `data_dir`. It keeps its port across
    restarts, so clients reconnect to the same URL."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, database: str, **options: str) -> str:
        query = "&".join(f"{key}={value}" for key, value in options.items())
        return f"mongodb://{self.address}/{database}" + (f"?{query}" if query else "")

    @property
    def log_path(self) -> Path:
        return self.data_dir / "ferretdb.log"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 30) -> FerretDB:
        if not FERRETDB_BIN.is_file():
            raise FerretDBMissing(FERRETDB_BIN)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            str(FERRETDB_BIN),
            "--handler=sqlite",
            f"--sqlite-url=file:{self.data_dir}/",
            f"--listen-addr={self.address}",
            f"--state-dir={self.data_dir}",
            "--telemetry=disable",
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not _accepts_connections(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"FerretDB exited with {self.proc.returncode}: {self.logs()[-2000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"FerretDB not listening on {self.address} after {timeout}s")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-request, as in a crash."""
        self._stop(signal.SIGKILL)

    def stop(self) -> None:
        self._stop(signal.SIGTERM)

    def restart(self) -> FerretDB:
        self.stop()
        return self.start()

    def _stop(self, sig: signal.Signals) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_ferretdb(data_dir: Path) -> FerretDB:
    return FerretDB(data_dir).start()
