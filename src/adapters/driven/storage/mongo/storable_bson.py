"""Make documents storable as BSON without changing what existing readers see."""

from __future__ import annotations

import math
from typing import Any

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


class UnstorableValue(ValueError):
    """A value no MongoDB-wire store here should be sent (FerretDB v1 drops the connection on NaN)."""


def bson_safe(value: Any) -> Any:
    """`value` with every integer outside the signed 64-bit range turned into a float, every
    lone surrogate in a string value turned into U+FFFD, and -0.0 turned into 0.0. Raises
    UnstorableValue on NaN.

    -0.0 becomes 0.0 because FerretDB v1 silently stores -0 as 0, and stores must agree; JSON text
    cannot tell them apart after JSON.stringify anyway ("0"), so the payload_hash is the same.
    NaN is refused: FerretDB v1 closes the connection on it (an outage, not an answer), and a JSON
    body cannot carry it, so only a bug could send one.

    BSON has no wider integer and only UTF-8 strings; both replacements are what the Node service
    stored anyway (JS numbers are doubles; its driver encoded a lone surrogate as U+FFFD). The
    payload_hash is computed before, on the value as received, so it stays Node's. Containers are
    copied only where something changed, so the common case costs one walk.
    """
    if isinstance(value, str):
        if value.isascii():
            return value
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in value)
        return value
    if type(value) is float:
        if value == 0.0 and math.copysign(1.0, value) < 0:
            return 0.0
        if value != value:
            raise UnstorableValue("NaN cannot be stored (FerretDB v1 drops the connection on it)")
        return value
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX or isinstance(value, bool):
            return value
        try:
            return float(value)
        except OverflowError:  # beyond a double too; JS would say Infinity
            return math.copysign(math.inf, value)
    if isinstance(value, dict):
        copied: dict[Any, Any] | None = None
        for key, item in value.items():
            safe = bson_safe(item)
            if safe is not item:
                if copied is None:
                    copied = dict(value)
                copied[key] = safe
        return value if copied is None else copied
    if isinstance(value, list):
        copied_list: list[Any] | None = None
        for index, item in enumerate(value):
            safe = bson_safe(item)
            if safe is not item:
                if copied_list is None:
                    copied_list = list(value)
                copied_list[index] = safe
        return value if copied_list is None else copied_list
    return value
