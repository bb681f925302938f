"""How operator commands print: JSON lines for scripts (and whenever stdout is not a terminal),
or for people a table, a summary line and a rich progress bar."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from adapters.driving.operator_cli.tally import BulkEvent, Tally, outcome_name, rider_failure
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb

#: Failed riders listed above the progress bar; the rest are only counted (--json lists all).
MAX_FAILURES_SHOWN = 20


def message_json(message: Message) -> str:
    """One line of proto3 JSON with the .proto field names (int64 as numbers where exact)."""
    as_dict = json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        unquote_int64_if_possible=True,
    )
    return json.dumps(as_dict, ensure_ascii=False)


class StreamView(Protocol):
    tally: Tally

    def event(self, event: BulkEvent) -> None: ...
    def finish(self, seconds: float) -> None: ...
    def stopped(self, how: str) -> None: ...


class Output(Protocol):
    def message(self, message: Message) -> None: ...
    def result(self, result: pb.RefreshResult) -> None: ...
    def cache(self, cache: pb.TicketCache) -> None: ...
    def purged(self, response: pb.PurgeOrphanedCachesResponse) -> None: ...
    def sync_statuses(self, statuses: list[pb.SyncStatus]) -> None: ...
    def change(self, event: pb.ChangeEvent) -> None: ...
    def stream(self, command: str) -> StreamView: ...


def choose_output(as_json: bool, stdout: TextIO | None = None) -> Output:
    out = stdout or sys.stdout
    return JsonOutput(out) if as_json or not out.isatty() else HumanOutput(Console(file=out))


class JsonOutput:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def message(self, message: Message) -> None:
        print(message_json(message), file=self._out, flush=True)

    def result(self, result: pb.RefreshResult) -> None:
        self.message(result)

    def cache(self, cache: pb.TicketCache) -> None:
        self.message(cache)

    def purged(self, response: pb.PurgeOrphanedCachesResponse) -> None:
        self.message(response)

    def sync_statuses(self, statuses: list[pb.SyncStatus]) -> None:
        for status in statuses:
            self.message(status)

    def change(self, event: pb.ChangeEvent) -> None:
        self.message(event)

    def stream(self, command: str) -> StreamView:
        return JsonStream(self, command)


class JsonStream:
    def __init__(self, output: JsonOutput, command: str) -> None:
        self._output, self._command, self.tally = output, command, Tally()

    def event(self, event: BulkEvent) -> None:
        self.tally.add(event)
        self._output.message(event)

    def finish(self, seconds: float) -> None:
        print(self.tally.summary(self._command, seconds), file=sys.stderr)

    def stopped(self, how: str) -> None:
        print(self.tally.how_far(self._command, how), file=sys.stderr)


def _when(timestamp: Any) -> str:
    if not timestamp.seconds:
        return "-"
    return datetime.fromtimestamp(timestamp.seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def result_line(result: pb.RefreshResult) -> str:
    c = result.counts
    return (
        f"user {result.user_id}: {outcome_name(result.outcome)}; passes {c.passes}, passes4 {c.passes4}, "
        f"new {c.new}, changed {c.changed}, removed {c.removed}, new free {c.new_free}; "
        f"refreshed {_when(result.refreshed_at)}"
    )


class HumanOutput:
    def __init__(self, console: Console) -> None:
        self.console = console

    def message(self, message: Message) -> None:
        self.console.print(message_json(message), markup=False, highlight=False)

    def result(self, result: pb.RefreshResult) -> None:
        self.console.print(result_line(result), markup=False, highlight=False)

    def cache(self, cache: pb.TicketCache) -> None:
        table = Table(title=f"ticket cache of user {cache.user_id}")
        for column in ("list", "pass uuid", "status", "free", "changed", "payload hash"):
            table.add_column(column, no_wrap=column in ("pass uuid", "payload hash"))
        with_payload = any(p.WhichOneof("content") for p in (*cache.passes, *cache.passes4))
        if with_payload:
            table.add_column("payload", overflow="ellipsis", no_wrap=True, max_width=60)
        for name, entries in (("passes", cache.passes), ("passes4", cache.passes4)):
            for entry in entries:
                row = [name, entry.pass_uuid, entry.status, str(entry.free_ticket_status)]
                row += [_when(entry.timestamp), entry.payload_hash]
                if with_payload:
                    row.append(_payload_text(entry))
                table.add_row(*row)
        self.console.print(table)
        self.console.print(
            f"user {cache.user_id}: {len(cache.passes)} passes, {len(cache.passes4)} passes4, "
            f"version {cache.version}, refreshed {_when(cache.timestamp)}",
            markup=False,
            highlight=False,
        )

    def purged(self, response: pb.PurgeOrphanedCachesResponse) -> None:
        ids = ", ".join(str(i) for i in response.removed_user_ids) or "none"
        verb = "would remove" if response.dry_run else "removed"
        count = len(response.removed_user_ids)
        self.console.print(
            f"{verb} {count} orphaned caches: {ids}; and the sync statuses of"
            f" {response.removed_sync_statuses} riders without a token",
            markup=False,
            highlight=False,
        )

    def sync_statuses(self, statuses: list[pb.SyncStatus]) -> None:
        table = Table(title="sync status")
        for column in (
            "user",
            "state",
            "last attempt",
            "last success",
            "failures",
            "next attempt",
            "last error",
        ):
            table.add_column(column, overflow="fold")
        for s in statuses:
            error = f"{s.last_error.code}: {s.last_error.message}" if s.HasField("last_error") else ""
            state = pb.SyncState.Name(s.state).removeprefix("SYNC_STATE_")
            table.add_row(
                str(s.user_id),
                state,
                _when(s.last_attempt_at),
                _when(s.last_success_at),
                str(s.consecutive_failures),
                _when(s.next_attempt_at),
                error,
            )
        self.console.print(table)
        self.console.print(f"{len(statuses)} riders", markup=False, highlight=False)

    def change(self, event: pb.ChangeEvent) -> None:
        kind = pb.ChangeKind.Name(event.kind).removeprefix("CHANGE_KIND_")
        where = pb.PassList.Name(event.list).removeprefix("PASS_LIST_").lower()
        free = " free ticket" if event.free_ticket else ""
        self.console.print(
            f"{_when(event.changed_at)} user {event.user_id} {where} {kind} {event.pass_uuid}{free} "
            f"hash {event.payload_hash} (cursor {event.cursor})",
            markup=False,
            highlight=False,
        )

    def stream(self, command: str) -> StreamView:
        return ProgressStream(self.console, command)


def _payload_text(entry: pb.CachedPass) -> str:
    if entry.HasField("payload"):
        return json.dumps(json_format.MessageToDict(entry.payload), separators=(",", ":"))
    return entry.payload_json


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- riders/s" if speed is None else f"{speed:.1f} riders/s")


class ProgressStream:
    """A rich progress bar of a bulk stream: riders done/total, rate, ETA, failures by status code
    and skipped riders by reason; failed riders listed above it; a summary line at the end."""

    def __init__(self, console: Console, command: str) -> None:
        self._console, self._command, self.tally = console, command, Tally()
        self._shown_failures = 0
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("failed: {task.fields[failed]} | skipped: {task.fields[skipped]}"),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task(command, total=None, failed="none", skipped="none")
        self._progress.start()

    def event(self, event: BulkEvent) -> None:
        self.tally.add(event)
        failure = rider_failure(event)
        if failure and self._shown_failures < MAX_FAILURES_SHOWN:
            self._shown_failures += 1
            more = " (further failures only counted)" if self._shown_failures == MAX_FAILURES_SHOWN else ""
            code, message = failure
            self._progress.console.print(
                f"user {event.user_id}: {code}: {message}{more}",
                markup=False,
                highlight=False,
            )
        self._progress.update(
            self._task,
            total=self.tally.total or None,
            completed=self.tally.done,
            failed=self.tally.failures_text(),
            skipped=self.tally.skipped_text(),
        )

    def finish(self, seconds: float) -> None:
        self._progress.stop()
        self._console.print(self.tally.summary(self._command, seconds), markup=False, highlight=False)

    def stopped(self, how: str) -> None:
        self._progress.stop()
        self._console.print(self.tally.how_far(self._command, how), markup=False, highlight=False)
