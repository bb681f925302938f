"""Start a real Jaeger v2 (v1.75.0, an OpenTelemetry Collector with Jaeger's storage and query
API) for the tracing E2E test. The binary is `.tools/jaeger`, built by `make jaeger` from
tools/jaeger/.

It runs from a config file of our own: free ports (its defaults are fixed: 4317/4318, and the
query API on *:16686), everything bound to 127.0.0.1, in-memory storage, no self-telemetry."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.harness import stop_process, wait_until
from devtools.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
#: JAEGER_BIN overrides the path, e.g. for a Jaeger installed elsewhere.
JAEGER_BIN = Path(os.environ.get("JAEGER_BIN", REPO_ROOT / ".tools" / "jaeger"))
BUILD_HINT = "run `make jaeger` (needs Go; builds tools/jaeger into .tools/jaeger)"

_CONFIG = """\
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_query:
    storage:
      traces: memstore
    enable_tracing: false
    http:
      endpoint: 127.0.0.1:{query_port}
    grpc:
      endpoint: 127.0.0.1:{query_grpc_port}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{otlp_grpc_port}
      http:
        endpoint: 127.0.0.1:{otlp_http_port}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""


class JaegerMissing(RuntimeError):
    def __init__(self, path: Path) -> None:
        super().__init__(f"Jaeger binary not found at {path}: {BUILD_HINT}")


@dataclass
class Jaeger:
    """One Jaeger process; `otlp_http_url`/`otlp_grpc_url` take spans, `trace()` reads them back."""

    work_dir: Path
    query_port: int = field(default_factory=free_port)
    query_grpc_port: int = field(default_factory=free_port)
    otlp_grpc_port: int = field(default_factory=free_port)
    otlp_http_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def otlp_http_url(self) -> str:
        return f"http://127.0.0.1:{self.otlp_http_port}"

    @property
    def otlp_grpc_url(self) -> str:
        return f"http://127.0.0.1:{self.otlp_grpc_port}"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "jaeger.log"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 60) -> Jaeger:
        if not JAEGER_BIN.is_file():
            raise JaegerMissing(JAEGER_BIN)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config = self.work_dir / "jaeger.yaml"
        config.write_text(
            _CONFIG.format(
                query_port=self.query_port,
                query_grpc_port=self.query_grpc_port,
                otlp_grpc_port=self.otlp_grpc_port,
                otlp_http_port=self.otlp_http_port,
            )
        )
        # Jaeger reads OTEL_* too (for its own telemetry): none of ours reaches it.
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(JAEGER_BIN), f"--config=file:{config}"], stdout=log, stderr=subprocess.STDOUT, env=env
            )
        try:
            wait_until(self._ready, timeout, "Jaeger", self.proc, self.log_path)
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        """The query API answers and the OTLP/HTTP receiver takes an (empty) export."""
        services = self._get("/api/services")
        if services is None:
            return False
        request = urllib.request.Request(
            f"{self.otlp_http_url}/v1/traces", data=b"{}", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=2) as response:
            return bool(response.status == 200)

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """The trace as the query API returns it (`/api/traces/{id}`: spans, processes), or None
        while Jaeger has none of it."""
        found = self._get(f"/api/traces/{trace_id}")
        if not found or not found.get("data"):
            return None
        return dict(found["data"][0])

    def traces(self, service: str, operation: str) -> list[dict[str, Any]]:
        """The traces holding a span of `service` named `operation` (the query API's search)."""
        query = urllib.parse.urlencode({"service": service, "operation": operation, "limit": 100})
        found = self._get(f"/api/traces?{query}")
        return list(found.get("data") or []) if found else []

    def _get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.query_port}{path}", timeout=5) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc)
