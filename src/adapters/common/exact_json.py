"""JSON values (pass payloads) as compact JSON text, exactly: no number is rounded, whatever its
size, and every text is valid UTF-8. Shared by the gRPC RAW view and the SQLite store."""

from __future__ import annotations

import json

import orjson


def exact_json(value: object) -> bytes:
    """UTF-8 JSON text of `value` (a parsed JSON value such as a pass payload).

    orjson is ~10x faster than the standard library but refuses integers beyond 64 bits and
    lone surrogates; those rare values go through `stdlib_exact_json`."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError
        return stdlib_exact_json(value)


def stdlib_exact_json(value: object) -> bytes:
    """The slow exact path: `json` prints integers of any size exactly, and ASCII escaping keeps
    a lone surrogate valid JSON and valid UTF-8 (raw, it could not be encoded or stored)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii")
