"""Drive a bulk stream (from a server or run in-process) through a StreamView; the exit code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from adapters.driving.operator_cli.exit_codes import EXIT_FAILED, EXIT_OK
from adapters.driving.operator_cli.output import Output
from adapters.driving.operator_cli.tally import BulkEvent


async def show_stream(output: Output, command: str, events: AsyncIterator[BulkEvent]) -> int:
    """Show every event; 1 when any rider failed. On cancel (Ctrl-C) says how far the run got and
    re-raises, so the stream's owner cancels the call."""
    view = output.stream(command)
    started = time.monotonic()
    try:
        async for event in events:
            view.event(event)
    except asyncio.CancelledError:
        view.stopped("cancelled")
        raise
    except Exception:  # the RPC failed mid-stream: its owner prints the status
        view.stopped("stopped")
        raise
    view.finish(time.monotonic() - started)
    return EXIT_FAILED if view.tally.failed else EXIT_OK
