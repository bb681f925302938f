"""Table names come from configuration and end up inside SQL text, so they are checked, then quoted."""

from __future__ import annotations

import re

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def quoted_identifier(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"invalid SQLite table name {name!r}: use letters, digits and underscores")
    return f'"{name}"'
