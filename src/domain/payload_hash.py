"""The legacy Node service's payload hash, ``md5(JSON.stringify(payload))``, reproduced exactly.

Cached entries written by Node carry that hash, so ours must match it byte for byte or the
first refresh after the switch would mark every pass as changed. The input is the Python
value ``json.loads``/``orjson.loads`` produced from the JSON text Node would have given to
``JSON.parse``; the output is what ``JSON.stringify`` prints for the resulting JS value.

Python's ``json.dumps`` already agrees with JS for most payloads, so the common case uses the
C encoder after a cheap scan; anything JS prints differently goes through an exact encoder.
Standard library only: this is the pure domain.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import cast

__all__ = ["js_stringify", "payload_hash"]

#: Integers up to this magnitude are exact doubles, so JS prints their digits unchanged.
_MAX_EXACT_INTEGER = 2**53
#: ``JSON.parse`` array-index keys: canonical uint32 below 2**32 - 1 (ECMAScript "array index").
_MAX_ARRAY_INDEX = 2**32 - 2
_ARRAY_INDEX_KEY = re.compile(r"0|[1-9][0-9]{0,9}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

# Matches JS escaping: '"', '\\', \b \f \n \r \t, other C0 controls as lowercase \u00xx,
# everything else (non-ASCII, DEL, U+2028/9) raw. Surrogates are handled after encoding.
_quote_string = json.encoder.encode_basestring


def payload_hash(payload: object) -> str:
    """Lowercase hex md5 of the UTF-8 bytes of ``js_stringify(payload)``, as Node stored it."""
    return hashlib.md5(_stringify_to_utf8(payload), usedforsecurity=False).hexdigest()


def js_stringify(value: object) -> str:
    """What Node's ``JSON.stringify`` prints for the JS value ``JSON.parse`` would give.

    ``value`` is a parsed JSON value: dict with str keys, list/tuple, str, int, float, bool
    or None. Anything else raises ``TypeError``.
    """
    text = _stringify_raw(value)
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _escape_lone_surrogates(text)
    return text


def _stringify_to_utf8(value: object) -> bytes:
    text = _stringify_raw(value)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # only surrogates are unencodable, and they are rare
        return _escape_lone_surrogates(text).encode("utf-8")


def _stringify_raw(value: object) -> str:
    """JS output except that lone surrogates are still raw code points."""
    if _dumps_agrees_with_js(value):
        return _dumps_compact(value)
    return _exact_stringify(value)


def _escape_lone_surrogates(text: str) -> str:
    # A str may hold a valid pair as two code points; JS sees one character there.
    # The UTF-16 round trip joins such pairs and leaves lone halves in place.
    utf16 = text.encode("utf-16-le", "surrogatepass")
    joined = utf16.decode("utf-16-le", "surrogatepass")
    # Node >= 12 prints a lone surrogate as a lowercase \uXXXX escape.
    return _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", joined)


# --- fast path -----------------------------------------------------------------------------


def _dumps_agrees_with_js(value: object) -> bool:
    """True when ``json.dumps`` prints ``value`` exactly as JS would (surrogates aside)."""
    try:
        return _scan_agrees_with_js(value)
    except TypeError:  # a non-str key met the key comparison; the exact path rejects it
        return False


def _scan_agrees_with_js(value: object) -> bool:
    # Hot loop, run once per payload: exact type checks with scalars inlined, recursing
    # only into containers. Anything unusual is left to the exact path.
    if type(value) is dict:
        for key, item in value.items():
            # Index-like keys would be reordered and all start with a digit (a cheap
            # over-approximation). A non-str key raises TypeError here.
            if "0" <= key < ":":
                return False
            if type(item) is str or item is None or type(item) is bool:
                continue
            if type(item) is int:
                if -_MAX_EXACT_INTEGER <= item <= _MAX_EXACT_INTEGER:
                    continue
                return False
            if type(item) is float:
                if _repr_agrees_with_js(item):
                    continue
                return False
            if not _scan_agrees_with_js(item):
                return False
        return True
    if type(value) is list or type(value) is tuple:
        for item in value:
            if type(item) is str or item is None or type(item) is bool:
                continue
            if not _scan_agrees_with_js(item):
                return False
        return True
    if type(value) is str or type(value) is bool or value is None:
        return True
    if type(value) is int:
        return -_MAX_EXACT_INTEGER <= value <= _MAX_EXACT_INTEGER
    if type(value) is float:
        return _repr_agrees_with_js(value)
    return False


def _repr_agrees_with_js(number: float) -> bool:
    # repr and JS both print shortest round-trip digits. They agree in layout for finite,
    # non-integral values printed in fixed notation by both: repr switches to an exponent
    # below 1e-4 (JS: 1e-6) and prints integral values with ".0". Non-integral implies
    # below 2**52, well inside both fixed ranges; NaN fails the comparison.
    return 1e-4 <= abs(number) < 1e16 and not number.is_integer()


def _make_dumps_compact() -> Callable[[object], str]:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``, set up once.

    ``JSONEncoder.encode`` builds a new C encoder on every call, about a tenth of the
    fast path's time, so build it once when the C accelerator is there.
    """
    make_c_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_c_encoder is None:  # pure-Python json build
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
    # markers, default, encoder, indent, key_separator, item_separator, sort_keys,
    # skipkeys, allow_nan: as JSONEncoder.iterencode passes them.
    c_encode = make_c_encoder(None, None, _quote_string, None, ":", ",", False, False, False)

    def dumps_compact(value: object) -> str:
        return "".join(c_encode(value, 0))

    return dumps_compact


_dumps_compact = _make_dumps_compact()


# --- exact path ----------------------------------------------------------------------------


def _exact_stringify(value: object) -> str:
    # Common types first; exact type checks before isinstance keep the usual case cheap.
    if type(value) is str:
        return _quote_string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return _js_integer(value)
    if isinstance(value, float):
        return _js_number(value)
    if isinstance(value, str):
        return _quote_string(value)
    if isinstance(value, Mapping):
        members = [
            f"{_quote_string(key)}:{_exact_stringify(item)}" for key, item in _js_property_order(value)
        ]
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join([_exact_stringify(item) for item in value]) + "]"
    raise TypeError(f"not a parsed JSON value: {type(value).__name__}")


def _js_property_order(
    mapping: Mapping[object, object],
) -> Iterable[tuple[str, object]]:
    """Array-index keys ascending, then the other keys in insertion order (as V8 enumerates).

    A duplicate key in the JSON text keeps its first position and last value in both JS and
    a Python dict, so insertion order is already right.
    """
    index_keys: list[str] = []
    for key in mapping:
        if not isinstance(key, str):
            raise TypeError(f"object keys must be str, not {type(key).__name__}")
        if "0" <= key < ":" and _is_array_index(key):  # cheap digit test first
            index_keys.append(key)
    string_keyed = cast("Mapping[str, object]", mapping)  # every key checked above
    if not index_keys:
        return string_keyed.items()
    index_keys.sort(key=int)
    index_key_set = set(index_keys)
    other_keys = [key for key in string_keyed if key not in index_key_set]
    return [(key, string_keyed[key]) for key in index_keys + other_keys]


def _is_array_index(key: str) -> bool:
    return _ARRAY_INDEX_KEY.fullmatch(key) is not None and int(key) <= _MAX_ARRAY_INDEX


def _js_integer(number: int) -> str:
    if -_MAX_EXACT_INTEGER <= number <= _MAX_EXACT_INTEGER:
        return str(number)
    try:
        # Correctly rounded, as JSON.parse rounds the literal.
        nearest_double = float(number)
    except OverflowError:
        # JSON.parse gives +-Infinity there, which JSON.stringify prints as null.
        return "null"
    return _js_number(nearest_double)


def _js_number(number: float) -> str:
    """ECMAScript Number::toString(10) for a double; NaN and infinities print as null."""
    if not math.isfinite(number):
        return "null"
    if number == 0.0:
        return "0"  # also -0
    sign = "-" if number < 0 else ""
    # repr gives the shortest round-trip digits, the same digits JS chooses; only the
    # layout differs. Split it into digits d1..dk and n with value = 0.d1..dk * 10**n.
    mantissa, _, exponent_text = repr(abs(number)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    significant = all_digits.lstrip("0")
    leading_zeros = len(all_digits) - len(significant)
    point = len(whole) + int(exponent_text or "0") - leading_zeros
    digits = significant.rstrip("0")
    count = len(digits)
    if count <= point <= 21:
        return sign + digits + "0" * (point - count)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * -point + digits
    exponent = point - 1
    exponent_sign = "+" if exponent >= 0 else "-"
    fraction_part = "." + digits[1:] if count > 1 else ""
    return f"{sign}{digits[0]}{fraction_part}e{exponent_sign}{abs(exponent)}"
