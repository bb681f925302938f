"""Parsing and validating Bytemark response bodies. Every failure is an UpstreamUnavailable
naming the endpoint and what was wrong; the body itself is never quoted (it may be large)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

from application.errors import UpstreamUnavailable
from application.ports import TokenGrant
from domain.model import Payload

_OAUTH_ERROR_CODE = re.compile(r"[a-z_]{1,64}")


# Any integer literal outside 64 bits has at least 19 digits. orjson does not reject such
# integers: it silently turns them into floats, losing digits. A run of 19 digits anywhere
# (inside a string too; that only costs speed) sends the body to the exact stdlib parser.
# Found by mapping digits to "0" and the rest to " " and searching for 19 zeros: two C passes,
# 10-30x cheaper than the equivalent regex `[0-9]{19}` (bench/RESULTS.md, round 3).
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_NINETEEN_DIGITS = b"0" * 19


def _may_hold_huge_integer(body: bytes) -> bool:
    return _NINETEEN_DIGITS in body.translate(_DIGITS_AS_ZEROS)


def parse_json(body: bytes) -> Any:
    """orjson for speed; stdlib json when the body may hold an integer beyond 64 bits (kept
    exactly) or when orjson refuses the text (e.g. a lone surrogate, which JSON allows).
    Raises ValueError when the body is not JSON (NaN and Infinity are not JSON)."""
    if not _may_hold_huge_integer(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return json.loads(body, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _malformed(endpoint: str, what: str) -> UpstreamUnavailable:
    return UpstreamUnavailable(endpoint, f"malformed body: {what}")


def _load_object(endpoint: str, body: bytes) -> dict[str, Any]:
    try:
        document = parse_json(body)
    except (
        ValueError,
        RecursionError,
    ):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _malformed(endpoint, "not JSON") from None
    if not isinstance(document, dict):
        raise _malformed(endpoint, "top level is not an object")
    return document


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class PassesPage:
    passes: list[Payload]
    total_pages: int


def parse_passes_page(endpoint: str, body: bytes) -> PassesPage:
    """`{"data": {"passes": [...], "pagination": {"total_pages": n, ...}}}`; missing pagination
    means a single page."""
    document = _load_object(endpoint, body)
    data = document.get("data")
    if not isinstance(data, dict):
        raise _malformed(endpoint, "'data' is not an object")
    passes = data.get("passes")
    if not isinstance(passes, list):
        raise _malformed(endpoint, "'data.passes' is not a list")
    for index, item in enumerate(passes):
        if not isinstance(item, dict):
            raise _malformed(endpoint, f"data.passes[{index}] is not an object")
        if not isinstance(item.get("uuid"), str):
            raise _malformed(endpoint, f"data.passes[{index}] has no string 'uuid'")
    return PassesPage(passes=passes, total_pages=_total_pages(endpoint, data.get("pagination")))


def _total_pages(endpoint: str, pagination: object) -> int:
    if pagination is None:
        return 1
    if not isinstance(pagination, dict):
        raise _malformed(endpoint, "'data.pagination' is not an object")
    total_pages = pagination.get("total_pages")
    if total_pages is None:
        return 1
    if not _is_int(total_pages):
        raise _malformed(endpoint, "'data.pagination.total_pages' is not an integer")
    return total_pages


def parse_token_grant(endpoint: str, body: bytes) -> TokenGrant:
    document = _load_object(endpoint, body)
    access_token = document.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise _malformed(endpoint, "no string 'access_token'")
    refresh_token = document.get("refresh_token")
    if refresh_token is not None and not isinstance(refresh_token, str):
        raise _malformed(endpoint, "'refresh_token' is not a string")
    return TokenGrant(
        access_token=access_token,
        refresh_token=refresh_token or None,
        expires_in=_expires_in(document.get("expires_in")),
    )


def _expires_in(value: object) -> int | None:
    # A missing or odd expires_in is not worth failing a good grant: the expiry is then unknown.
    if _is_int(value):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def oauth_error_code(body: bytes) -> str | None:
    """The `error` field of an OAuth error body when it looks like an RFC 6749 code
    (so nothing arbitrary from the server ends up in our messages)."""
    try:
        document = parse_json(body)
    except (ValueError, RecursionError):
        return None
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, str) and _OAUTH_ERROR_CODE.fullmatch(error):
        return error
    return None
