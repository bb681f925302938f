"""GRPC_EVENT_LOOP: asyncio by default, uvloop on request, and asyncio when uvloop is missing."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest
import uvloop

from adapters.composition.settings import load_settings
from adapters.driving import event_loop


async def running_loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_asyncio_is_the_default() -> None:
    choice = load_settings({}).grpc_event_loop
    assert choice == "asyncio"
    assert not issubclass(event_loop.run(running_loop_type(), choice), uvloop.Loop)


def test_uvloop_is_chosen_by_name_and_runs_the_service_loop() -> None:
    choice = load_settings({"GRPC_EVENT_LOOP": "UVLOOP"}).grpc_event_loop
    assert event_loop.run(running_loop_type(), choice) is uvloop.Loop


def test_a_missing_uvloop_falls_back_to_asyncio_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop -> ImportError
    with caplog.at_level(logging.WARNING):
        loop_type = event_loop.run(running_loop_type(), "uvloop")
    assert not issubclass(loop_type, uvloop.Loop)
    assert "uvloop cannot be imported" in caplog.text


def test_an_unknown_loop_name_is_a_configuration_error() -> None:
    with pytest.raises(Exception, match="GRPC_EVENT_LOOP"):
        load_settings({"GRPC_EVENT_LOOP": "trio"})
