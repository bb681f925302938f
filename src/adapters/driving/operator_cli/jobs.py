"""`run refresh-stale` and `run bootstrap`: the server's bulk use cases and stores, in this process,
with the client commands' output (events converted exactly as the server converts them). When the
run ends, however it ends, its summary goes to the configured reporter (a Pushgateway) and is the
final log line, one JSON object."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing

from adapters.composition.container import Container, build_container, migrate_stores, resolve
from adapters.composition.settings import Settings
from adapters.driving.grpc_api.cache_encoding import CacheEncoder
from adapters.driving.grpc_api.converters import ProtoConverter
from adapters.driving.grpc_api.errors import status_for
from adapters.driving.operator_cli.exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, exit_code_for
from adapters.driving.operator_cli.output import choose_output
from adapters.driving.operator_cli.shards import UsageError, shard_of
from adapters.driving.operator_cli.streams import show_stream
from adapters.driving.operator_cli.tally import BulkEvent, Tally
from application.errors import ApplicationError
from application.ports import BulkJob
from application.results import BulkProgress
from application.run_summary import RunSummary
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb

log = logging.getLogger(__name__)


async def _events(
    stream: AsyncGenerator[BulkProgress, None], make: type[BulkEvent]
) -> AsyncIterator[BulkEvent]:
    converter = ProtoConverter(CacheEncoder(memo_bytes=0))
    async with aclosing(stream) as progress_events:
        async for progress in progress_events:
            event = make()
            if isinstance(event, pb.BuildCacheIfEmptyResponse):
                event.skipped_not_empty = progress.skipped_not_empty
            converter.write_progress(event, progress, None)
            yield event


async def _tallied(events: AsyncIterator[BulkEvent], tally: Tally) -> AsyncIterator[BulkEvent]:
    async for event in events:
        tally.add(event)
        yield event


async def _run_job(args: argparse.Namespace, settings: Settings, shard: tuple[int, int]) -> int:
    container = build_container(settings)
    tally, started, exit_code = Tally(), time.monotonic(), None
    try:
        exit_code = await _run_stream(args, container, shard, tally)
        return exit_code
    finally:
        summary = _summary(args.job, shard, tally, time.monotonic() - started, exit_code)
        try:
            if not getattr(args, "dry_run", False):  # a dry run refreshed nothing: no run to report
                await (await resolve(container.run_reporter)).report(summary)
        finally:
            await container.shutdown_resources()  # type: ignore[misc]
            log.info("run summary", extra=summary.fields())  # the Job's final log line


def _summary(
    command: str, shard: tuple[int, int], tally: Tally, seconds: float, exit_code: int | None
) -> RunSummary:
    """`exit_code` None: the run raised (a store down, cancelled) before it could end."""
    job = BulkJob.BOOTSTRAP if command == "bootstrap" else BulkJob.REFRESH_STALE
    stopped = tally.stopped or ("" if exit_code is not None else "did not finish")
    return RunSummary(
        job=job.value,
        shard=shard[0],
        shard_count=shard[1],
        done=tally.done,
        failed=tally.failed,
        skipped_by_reason={reason.replace(" ", "_"): n for reason, n in tally.skipped.items()},
        duration_seconds=seconds,
        finished_at=time.time(),
        succeeded=exit_code == EXIT_OK and not stopped,
        stopped=stopped,
    )


async def _run_stream(
    args: argparse.Namespace, container: Container, shard: tuple[int, int], tally: Tally
) -> int:
    output = choose_output(args.json)
    dry_run = getattr(args, "dry_run", False)
    if not dry_run:  # a dry run writes nothing, not even an index
        await migrate_stores(container)  # the same schema step `serve` runs at start
    use_cases = await resolve(container.use_cases)
    concurrency = args.concurrency or None
    if args.job == "bootstrap":
        events = _events(use_cases.build_if_empty(concurrency), pb.BuildCacheIfEmptyResponse)
    else:
        stream = use_cases.refresh_stale(
            max_age_seconds=args.max_age or None,
            concurrency=concurrency,
            shard_index=shard[0],
            shard_count=shard[1],
            user_ids=[],
            dry_run=dry_run,
        )
        events = _events(stream, pb.RefreshStaleCachesResponse)
    return await show_stream(output, args.job, _tallied(events, tally))


def run_job(args: argparse.Namespace, settings: Settings) -> int:
    try:
        shard = shard_of(args) if args.job == "refresh-stale" else (0, 0)
    except UsageError as exc:
        print(f"usage error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(_run_job(args, settings, shard))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except ApplicationError as exc:  # e.g. a store unreachable: the same words a server would send
        code, message = status_for(exc)
        print(f"{code.name}: {message}", file=sys.stderr)
        return exit_code_for(code.name)
