"""payload_hash must equal what the legacy Node service stored: md5(JSON.stringify(payload)).

The vectors were produced by Node itself; regenerate them with
``node tests/unit/domain/hash_vectors/generate_hash_vectors.js``.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.payload_hash import (
    _dumps_agrees_with_js,
    _dumps_compact,
    _exact_stringify,
    _js_number,
    _repr_agrees_with_js,
    js_stringify,
    payload_hash,
)

VECTORS_PATH = Path(__file__).parent / "hash_vectors" / "hash_vectors.json"
VECTORS: list[dict[str, str]] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))["vectors"]
VECTOR_IDS = [vector["name"] for vector in VECTORS]

MAX_EXACT_INTEGER = 2**53


def parse_with_orjson(text: str) -> Any | None:
    """orjson's value, or None where it rejects the text (the service then uses json)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


ORJSON_VECTORS = [vector for vector in VECTORS if parse_with_orjson(vector["input"]) is not None]


def as_js_string(text: str) -> str:
    """The string as JS holds it: a surrogate pair written as two code points is one char."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def stringify_exactly(value: object) -> str:
    """The exact path alone, with the same lone-surrogate finish js_stringify applies."""
    text = _exact_stringify(value)
    return as_js_string(text).encode("utf-8", "backslashreplace").decode("utf-8")


# --- Node vectors ------------------------------------------------------------------------


def test_the_vectors_cover_every_rule_and_come_from_node() -> None:
    assert len(VECTORS) >= 40
    assert len(set(VECTOR_IDS)) == len(VECTOR_IDS)
    for vector in VECTORS:
        assert hashlib.md5(vector["stringified"].encode("utf-8")).hexdigest() == vector["md5"]


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_js_stringify_of_the_json_loads_value_prints_what_node_printed(
    vector: dict[str, str],
) -> None:
    assert js_stringify(json.loads(vector["input"])) == vector["stringified"]


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_payload_hash_of_the_json_loads_value_is_the_md5_node_computed(
    vector: dict[str, str],
) -> None:
    assert payload_hash(json.loads(vector["input"])) == vector["md5"]


@pytest.mark.parametrize("vector", ORJSON_VECTORS, ids=[v["name"] for v in ORJSON_VECTORS])
def test_the_orjson_value_stringifies_and_hashes_as_node_did(
    vector: dict[str, str],
) -> None:
    value = orjson.loads(vector["input"])
    assert js_stringify(value) == vector["stringified"]
    assert payload_hash(value) == vector["md5"]


def test_orjson_rejects_only_texts_that_the_json_fallback_parses() -> None:
    rejected = {vector["name"] for vector in VECTORS if vector not in ORJSON_VECTORS}
    # Overflowing numbers and lone surrogates; the service falls back to json.loads there.
    assert rejected == {
        "overflowing literal becomes null",
        "integer too large for a double becomes null",
        "lone high surrogate",
        "lone low surrogate followed by text",
        "reversed surrogate pair stays two lone surrogates",
        "lone surrogate in a key",
    }


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_the_exact_path_alone_prints_what_node_printed(vector: dict[str, str]) -> None:
    assert stringify_exactly(json.loads(vector["input"])) == vector["stringified"]


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_the_fast_path_when_taken_prints_exactly_what_the_exact_path_prints(
    vector: dict[str, str],
) -> None:
    for value in (json.loads(vector["input"]), parse_with_orjson(vector["input"])):
        if value is not None and _dumps_agrees_with_js(value):
            assert _dumps_compact(value) == _exact_stringify(value)


@pytest.mark.parametrize(
    "name",
    ["sample usable pass", "sample free active pass", "sample expired pass"],
)
def test_realistic_passes_take_the_fast_path(name: str) -> None:
    (vector,) = [vector for vector in VECTORS if vector["name"] == name]
    assert _dumps_agrees_with_js(json.loads(vector["input"]))
    assert _dumps_agrees_with_js(orjson.loads(vector["input"]))


@pytest.mark.parametrize(
    "value",
    [
        {"fare": 2.0},
        {"fare": 1e-5},
        {"id": 2**53 + 1},
        {"zones": {"1": "A"}},
        [{"nested": [0.0]}],
        {1: "non-str key"},
    ],
    ids=repr,
)
def test_values_json_dumps_would_print_differently_take_the_exact_path(
    value: object,
) -> None:
    assert not _dumps_agrees_with_js(value)


# --- behaviour beyond the vectors --------------------------------------------------------


def test_a_str_holding_a_surrogate_pair_as_two_code_points_prints_as_one_character() -> None:
    # JS strings are UTF-16, so the pair is one character there, printed raw.
    assert js_stringify("\ud83d\ude00") == '"\U0001f600"'
    assert payload_hash("\ud83d\ude00") == payload_hash("\U0001f600")


def test_tuples_print_as_arrays() -> None:
    assert js_stringify({"a": (1, 2.0, "x")}) == '{"a":[1,2,"x"]}'


def test_nan_and_infinities_print_as_null_like_js() -> None:
    assert js_stringify([math.nan, math.inf, -math.inf]) == "[null,null,null]"


@pytest.mark.parametrize("value", [{1: "x"}, {"a": object()}, b"bytes", {"s": {1, 2}}])
def test_values_that_are_not_parsed_json_are_rejected(value: object) -> None:
    with pytest.raises(TypeError):
        js_stringify(value)


def test_the_hash_is_lowercase_hex_md5_of_the_utf8_text() -> None:
    payload = {"name": "東京 ✓", "fare": 1.0}
    expected = hashlib.md5('{"name":"東京 ✓","fare":1}'.encode()).hexdigest()
    assert payload_hash(payload) == expected


# --- properties ----------------------------------------------------------------------------

# No bigints (rounded) and no NaN or infinities (printed as null); other floats round-trip.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_EXACT_INTEGER, max_value=MAX_EXACT_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_keys = (
    st.text()
    | st.integers(min_value=0, max_value=2**33).map(str)
    | st.sampled_from(["0", "01", "-1", "1.0", "4294967294", "4294967295"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children) | st.dictionaries(json_keys, children),
    max_leaves=40,
)


def is_array_index(key: str) -> bool:
    return key.isascii() and key.isdigit() and str(int(key)) == key and int(key) < 2**32 - 1


@given(json_values)
def test_the_output_is_json_that_parses_back_to_an_equal_value(value: object) -> None:
    # Every JS number is a double: integral floats past 2**53 print as integer digits.
    assert json.loads(js_stringify(value), parse_int=float) == value


@given(json_values)
def test_the_fast_path_agrees_with_the_exact_path_whenever_it_is_taken(
    value: object,
) -> None:
    if _dumps_agrees_with_js(value):
        assert _dumps_compact(value) == _exact_stringify(value)


@given(st.dictionaries(json_keys, st.integers(0, 9)))
def test_keys_come_out_array_indices_ascending_then_the_rest_in_insertion_order(
    mapping: dict[str, int],
) -> None:
    printed_keys = list(json.loads(js_stringify(mapping)))
    index_keys = sorted((key for key in mapping if is_array_index(key)), key=int)
    other_keys = [key for key in mapping if not is_array_index(key)]
    assert printed_keys == index_keys + other_keys


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_prints_digits_that_read_back_as_the_same_double(
    number: float,
) -> None:
    assert float(_js_number(number)) == number


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_repr_is_trusted_only_where_it_matches_the_js_layout(number: float) -> None:
    if _repr_agrees_with_js(number):
        assert repr(number) == _js_number(number)


@given(st.integers())
def test_integers_of_any_size_print_as_the_nearest_double(number: int) -> None:
    printed = js_stringify(number)
    try:
        nearest = float(number)
    except OverflowError:
        assert printed == "null"
    else:
        assert float(printed) == nearest
        if abs(number) <= MAX_EXACT_INTEGER:
            assert printed == str(number)


@given(st.text(alphabet=st.characters(codec=None, categories=["Cs", "Ll", "So"])))
def test_strings_with_surrogates_print_as_valid_utf8_json_of_the_js_string(
    text: str,
) -> None:
    printed = js_stringify(text)
    printed.encode("utf-8")  # no raw surrogate left
    assert json.loads(printed) == as_js_string(text)
