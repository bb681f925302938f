"""JSON text for the SQLite columns that hold documents (cache entry lists, log payloads).

orjson is fast but refuses integers beyond 64 bits and lone surrogates on write, and silently turns
big integers into floats on read. Text that needed the exact encoder (`adapters.common.exact_json`, which
ASCII-escapes so a lone surrogate stays storable UTF-8) is written with a leading space (still valid
JSON, still readable by SQLite's json functions), so reads pick the exact decoder with a one-character
test instead of scanning the text. Rows seeded by hand with such integers read as floats, as in Node.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from adapters.common.exact_json import stdlib_exact_json

_EXACT_MARK = " "


def dumps_json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits or a lone surrogate
        return _EXACT_MARK + stdlib_exact_json(value).decode("ascii")


def loads_json(text: str | bytes) -> Any:
    if isinstance(text, str) and text.startswith(_EXACT_MARK):
        return json.loads(text)
    return orjson.loads(text)
