"""Order passes by `time_created` ascending, as the Node service did with `new Date(...)`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from domain.model import Payload

_UNPARSABLE = (1, 0.0)


def time_created_sort_key(payload: Payload) -> tuple[int, float]:
    """(0, epoch seconds) for a parsable ISO-8601 instant, (1, 0) otherwise so those go last."""
    raw: Any = payload.get("time_created")
    if not isinstance(raw, str) or not raw:
        return _UNPARSABLE
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return _UNPARSABLE
    if moment.tzinfo is None:  # the service runs in UTC; Bytemark sends 'Z' instants anyway
        moment = moment.replace(tzinfo=UTC)
    return (0, moment.timestamp())


def sort_by_time_created(payloads: Iterable[Payload]) -> list[Payload]:
    """Stable: equal or unparsable times keep the order Bytemark sent them in."""
    return sorted(payloads, key=time_created_sort_key)
