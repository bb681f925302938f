"""Running totals of a bulk stream: what the progress bar shows and the summary line says."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from google.rpc import code_pb2

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb

BulkEvent = pb.BuildCacheIfEmptyResponse | pb.RefreshStaleCachesResponse

#: Outcomes that mean "nothing to do for this rider", and how the summary names them.
SKIP_REASONS: dict[int, str] = {
    pb.OUTCOME_FRESH: "fresh",
    pb.OUTCOME_NO_VALID_TOKEN: "no valid token",
}
#: Riders a bulk run left alone because of their sync state (no Bytemark call).
SYNC_SKIP_REASONS: dict[int, str] = {
    pb.SKIP_REASON_AUTH_REQUIRED: "auth required",
    pb.SKIP_REASON_BACKOFF: "backoff",
}


def outcome_name(outcome: int) -> str:
    return pb.Outcome.Name(outcome).removeprefix("OUTCOME_")  # type: ignore[arg-type]


def rider_failure(event: BulkEvent) -> tuple[str, str] | None:
    """(status code name, message) of a rider that failed, from the event's google.rpc.Status;
    None when it did not fail."""
    if not event.HasField("status"):
        return None
    return code_pb2.Code.Name(event.status.code), event.status.message


@dataclass
class Tally:
    done: int = 0
    total: int = 0
    failed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # by status code name
    skipped: Counter[str] = field(default_factory=Counter)  # by reason
    not_empty: bool = False
    stopped: str = ""  # why the run stopped early (a general Bytemark outage)

    def add(self, event: BulkEvent) -> None:
        self.done, self.total, self.failed = event.done, event.total, event.failed
        if isinstance(event, pb.BuildCacheIfEmptyResponse) and event.skipped_not_empty:
            self.not_empty = True
            self.skipped["store not empty"] += 1
        elif event.stopped:
            self.stopped = event.stopped
        elif event.skipped in SYNC_SKIP_REASONS:
            self.skipped[SYNC_SKIP_REASONS[event.skipped]] += 1
        elif failure := rider_failure(event):
            self.failures[failure[0]] += 1
        elif event.HasField("result"):
            outcome = event.result.outcome
            self.outcomes[outcome_name(outcome)] += 1
            if outcome in SKIP_REASONS:
                self.skipped[SKIP_REASONS[outcome]] += 1

    def failures_text(self) -> str:
        return ", ".join(f"{code} {n}" for code, n in self.failures.most_common()) or "none"

    def skipped_text(self) -> str:
        return ", ".join(f"{reason} {n}" for reason, n in self.skipped.most_common()) or "none"

    def summary(self, command: str, seconds: float) -> str:
        if self.not_empty:
            return f"{command}: skipped, the cache store is not empty (nothing built)"
        rate = self.done / seconds if seconds > 0 else 0.0
        outcomes = ", ".join(f"{name} {n}" for name, n in self.outcomes.most_common()) or "none"
        return (
            f"{command}: {self.done} of {self.total} riders in {seconds:.1f}s ({rate:.1f}/s); "
            f"outcomes: {outcomes}; failed {self.failed} ({self.failures_text()}); "
            f"skipped: {self.skipped_text()}" + (f"; {self.stopped}" if self.stopped else "")
        )

    def how_far(self, command: str, how: str) -> str:
        return f"{command} {how} after {self.done} of {self.total} riders ({self.failed} failed)"
