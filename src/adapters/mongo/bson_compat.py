"""Make documents storable as BSON without changing what existing readers see."""

from __future__ import annotations

import math
from typing import Any

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def bson_safe(value: Any) -> Any:
    """`value` with every integer outside the signed 64-bit range turned into a float.

    BSON has no wider integer, and this is what the Node service stored anyway: JS numbers are
    doubles. Containers are copied only where something changed, so the common case costs one walk.
    """
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
