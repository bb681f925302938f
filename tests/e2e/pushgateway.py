"""A real Prometheus Pushgateway (.tools/pushgateway, `make pushgateway`) on a free port, and what
it holds, read back from its own /metrics."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from devtools.ferretdb import REPO_ROOT
from devtools.harness import free_port, stop_process, wait_until

PUSHGATEWAY_BIN = REPO_ROOT / ".tools" / "pushgateway"


@contextmanager
def running_pushgateway(work_dir: Path) -> Iterator[str]:
    """The Pushgateway's base URL while it runs (nothing persisted: every start is empty)."""
    if not PUSHGATEWAY_BIN.is_file():
        raise RuntimeError(f"{PUSHGATEWAY_BIN} is missing: run `make pushgateway`")
    listen = f"127.0.0.1:{free_port()}"
    log_path = work_dir / "pushgateway.log"
    proc = subprocess.Popen(
        [str(PUSHGATEWAY_BIN), f"--web.listen-address={listen}", "--log.level=warn"],
        stdout=open(log_path, "wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://{listen}"
    try:
        wait_until(lambda: _ready(url), 30, "pushgateway", proc, log_path)
        yield url
    finally:
        stop_process(proc)


def _ready(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
        return bool(response.status == 200)


def pushed(url: str, job: str, shard: str) -> dict[str, float]:
    """The group's series as the Pushgateway exposes them: `name` or `name{reason}` -> value."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            if labels.pop("job", None) != job or labels.pop("shard", None) != shard:
                continue
            labels.pop("instance", None)
            suffix = "".join(f"{{{value}}}" for value in labels.values())
            series[sample.name + suffix] = sample.value
    return series
