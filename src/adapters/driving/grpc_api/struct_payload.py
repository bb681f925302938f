"""A pass payload as `google.protobuf.Struct` (CACHE_VIEW_FULL).

A Struct holds numbers as doubles, so integers past 2^53 are rounded (CACHE_VIEW_RAW is exact).
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf.struct_pb2 import Struct

from domain.model import Payload


def set_struct(target: Struct, payload: Payload) -> None:
    """Fill `target` with `payload`. Values a Struct cannot hold as they are (integers beyond
    the double range, lone surrogates, non-string keys) are coerced rather than failing the read."""
    try:
        target.update(payload)
    except (OverflowError, ValueError, TypeError):
        target.Clear()
        target.update(_struct_safe(payload))


def _struct_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {_safe_text(str(key)): _struct_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_struct_safe(item) for item in value]
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    return _safe_text(str(value))


def _safe_text(text: str) -> str:
    # protobuf strings must be valid UTF-8: a lone surrogate becomes U+FFFD
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
