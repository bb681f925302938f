"""JSON text for the SQLite columns that hold documents (cache entry lists, log payloads).

orjson is fast but refuses integers beyond 64 bits on write and silently turns them into floats on
read. Text that needed the exact stdlib encoder is written with a leading space (still valid JSON,
still readable by SQLite's json functions), so reads pick the exact decoder with a one-character test
instead of scanning the text. Rows seeded by hand with such integers read as floats, as in Node.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_EXACT_MARK = " "


def dumps_json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        # JSONEncodeError subclasses TypeError; the stdlib keeps big integers exact.
        return _EXACT_MARK + json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads_json(text: str | bytes) -> Any:
    if isinstance(text, str) and text.startswith(_EXACT_MARK):
        return json.loads(text)
    return orjson.loads(text)
