"""Order passes by `time_created` ascending, as the Node service did with `new Date(...)`.

The rule: by the epoch seconds (a float) of a parsable ISO-8601 instant, naive read as UTC;
passes without one last; ties keep the order received. The functions below sort on the parsed
instants (no float or tuple per pass) and give exactly that order; the rule itself, written out
plainly, is the reference of tests/unit/domain/test_ordering_equivalence.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from domain.model import Payload

T = TypeVar("T")
_parse_instant = datetime.fromisoformat


def time_created_instant(payload: Payload) -> datetime | None:
    """The aware instant the rule orders by (naive read as UTC); None if the pass goes last."""
    raw: Any = payload.get("time_created")
    if not isinstance(raw, str) or not raw:
        return None
    try:
        moment = _parse_instant(raw)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


#: Between these instants (|epoch seconds| < 2**33) distinct microsecond instants have distinct
#: float timestamps, so ordering by the instant equals ordering by the rule's float seconds.
_EXACT_FROM = datetime(1700, 1, 1, tzinfo=UTC)
_EXACT_UNTIL = datetime(2200, 1, 1, tzinfo=UTC)


def order_of_instants(instants: list[datetime]) -> list[int]:
    """Indices of `instants` in ascending order, stable, tied exactly where the float epoch
    seconds of the rule tie (outside 1700-2200 those are compared instead)."""
    order = sorted(range(len(instants)), key=instants.__getitem__)
    if order and not (_EXACT_FROM <= instants[order[0]] and instants[order[-1]] < _EXACT_UNTIL):
        seconds = [moment.timestamp() for moment in instants]
        order = sorted(range(len(instants)), key=seconds.__getitem__)
    return order


def sort_by_time_created(payloads: Iterable[Payload]) -> list[Payload]:
    """Stable: equal or unparsable times keep the order Bytemark sent them in."""
    return ordered_by_instant(payloads, time_created_instant)


def ordered_by_instant(items: Iterable[T], instant_of: Callable[[T], datetime | None]) -> list[T]:
    """`items` by their instants, stable; those without one (None) last, in the order given."""
    dated: list[T] = []
    instants: list[datetime] = []
    undated: list[T] = []
    for item in items:
        moment = instant_of(item)
        if moment is None:
            undated.append(item)
        else:
            dated.append(item)
            instants.append(moment)
    ordered = [dated[index] for index in order_of_instants(instants)]
    ordered.extend(undated)
    return ordered
