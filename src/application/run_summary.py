"""What one `run refresh-stale` / `run bootstrap` process reports when it ends: the Job's runs
happen outside `serve`, so monitoring learns of them only from this summary (pushed to a
Pushgateway when one is configured, and always the Job's final log line)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RunSummary:
    job: str  # BulkJob value: 'refresh_stale' or 'bootstrap'
    shard: int  # the shard index (0 when unsharded)
    shard_count: int  # 0 when unsharded
    done: int
    failed: int
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    duration_seconds: float = 0.0
    finished_at: float = 0.0  # epoch seconds
    succeeded: bool = False  # ended on its own with every rider done or skipped (exit code 0)
    stopped: str = ""  # why it stopped early (a Bytemark outage, cancelled, an error), else ""

    def fields(self) -> dict[str, object]:
        """The summary as the final log line's fields; `last_success_at` only on a success."""
        fields: dict[str, object] = {
            "job": self.job,
            "shard": self.shard,
            "shard_count": self.shard_count,
            "riders_done": self.done,
            "riders_failed": self.failed,
            "riders_skipped": dict(self.skipped_by_reason),
            "duration_seconds": round(self.duration_seconds, 3),
            "succeeded": self.succeeded,
            "stopped": self.stopped,
        }
        if self.succeeded:
            fields["last_success_at"] = round(self.finished_at, 3)
        return fields


class RunReporter(Protocol):
    """Where a run summary goes besides the log (a Pushgateway, or nowhere)."""

    async def report(self, summary: RunSummary) -> None:
        """Best effort: raises nothing; a failure is logged."""


class NoRunReporter:
    async def report(self, summary: RunSummary) -> None:
        return None
