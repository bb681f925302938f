"""Driver loggers stay at WARNING or above whatever LOG_LEVEL says: at DEBUG they print bound SQL
parameters (aiosqlite, asyncmy), commands (pymongo, motor) and requests (aiohttp, slack_sdk),
rider tokens among them. The whole-process check is tests/e2e/test_debug_logs.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from adapters.common.logs import configure_logging

DRIVERS = (
    "aiosqlite",
    "asyncmy",
    "asyncmy.connection",
    "motor",
    "pymongo.command",
    "aiohttp.client",
    "slack_sdk",
)


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in (*DRIVERS, "bytemark_ticket_cache")}
    yield
    root.handlers[:], root.level = handlers, level
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


@pytest.mark.usefixtures("restored_logging")
@pytest.mark.parametrize("driver", DRIVERS)
def test_at_log_level_debug_a_driver_logs_warnings_but_not_its_debug_lines(driver: str) -> None:
    configure_logging("DEBUG", "json")

    assert logging.getLogger("bytemark_ticket_cache").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger(driver).isEnabledFor(logging.INFO)
    assert logging.getLogger(driver).isEnabledFor(logging.WARNING)


@pytest.mark.usefixtures("restored_logging")
def test_at_log_level_error_drivers_are_as_quiet_as_the_rest() -> None:
    configure_logging("ERROR", "json")

    assert not logging.getLogger("aiosqlite").isEnabledFor(logging.WARNING)
