"""The one bounded LRU behind every memo (SQLite rows, MongoDB reads and ids, gRPC encodings)."""

from __future__ import annotations

from adapters.common.bounded_lru import BoundedLru


def text_bytes(key: str, value: bytes) -> int:
    return len(value)


def test_the_least_recently_used_entries_go_once_their_bytes_pass_the_limit() -> None:
    lru: BoundedLru[str, bytes] = BoundedLru(10, text_bytes)
    lru.put("a", b"1234")
    lru.put("b", b"1234")
    assert lru.touch("a") == b"1234"  # now "b" is the oldest

    lru.put("c", b"1234")

    assert list(lru.entries) == ["a", "c"] and lru.size == 8


def test_get_reads_without_saving_an_entry_from_eviction() -> None:
    lru: BoundedLru[str, int] = BoundedLru(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1

    lru.put("c", 3)

    assert "a" not in lru and list(lru.entries) == ["b", "c"]


def test_an_entry_larger_than_the_limit_is_not_kept_and_replaces_nothing_stale() -> None:
    lru: BoundedLru[str, bytes] = BoundedLru(4, text_bytes)
    lru.put("a", b"12")

    assert lru.put("a", b"123456") is False

    assert "a" not in lru and lru.size == 0
    assert BoundedLru(0, text_bytes).put("x", b"1") is False  # a limit of 0 keeps nothing


def test_a_count_bound_applies_beside_the_byte_bound_and_every_leaving_entry_is_reported() -> None:
    gone: list[str] = []
    lru: BoundedLru[str, bytes] = BoundedLru(
        100, text_bytes, max_entries=2, on_remove=lambda key, value: gone.append(key)
    )
    for key in "abc":
        lru.put(key, b"x")
    lru.put("c", b"yy")  # replaced
    lru.pop("b")

    assert gone == ["a", "c", "b"]
    assert list(lru.entries) == ["c"] and lru.size == 2


def test_none_values_are_counted_like_any_other() -> None:
    seen: BoundedLru[str, None] = BoundedLru(2)
    for key in "abc":
        seen.put(key, None)
    seen.pop("c")

    assert list(seen.entries) == ["b"] and seen.size == 1 and len(seen) == 1
