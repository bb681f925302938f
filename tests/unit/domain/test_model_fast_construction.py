"""`CachedPass.from_document` and `make_cached_pass` skip the dataclass __init__ for speed;
they must build exactly what the constructor builds, with the same conversions."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from domain.model import CachedPass, make_cached_pass

DOCS: list[dict[str, Any]] = [
    {
        "pass_uuid": "a",
        "timestamp": 5,
        "status": "USABLE",
        "free_ticket_status": 1,
        "payload": {"uuid": "a"},
        "payload_hash": "h",
    },
    {},  # every field missing
    {"pass_uuid": None, "timestamp": None, "free_ticket_status": None, "payload": None, "payload_hash": None},
    {"pass_uuid": 7, "timestamp": "12", "free_ticket_status": True, "payload": {}, "payload_hash": 3},
    {
        "pass_uuid": "b",
        "timestamp": 3.9,
        "status": {"code": 1},
        "free_ticket_status": 0.0,
        "payload": {"x": [1]},
    },
]


def reference(doc: dict[str, Any]) -> CachedPass:
    """The original, constructor-based conversion."""
    return CachedPass(
        pass_uuid=str(doc.get("pass_uuid", "")),
        timestamp=int(doc.get("timestamp") or 0),
        status=doc.get("status"),
        free_ticket_status=int(doc.get("free_ticket_status") or 0),
        payload=doc.get("payload") or {},
        payload_hash=str(doc.get("payload_hash", "")),
    )


@pytest.mark.parametrize("doc", DOCS)
def test_from_document_builds_what_the_constructor_builds(doc: dict[str, Any]) -> None:
    fast = CachedPass.from_document(doc)
    slow = reference(doc)

    assert fast == slow
    assert [type(getattr(fast, f.name)) for f in dataclasses.fields(CachedPass)] == [
        type(getattr(slow, f.name)) for f in dataclasses.fields(CachedPass)
    ]


def test_make_cached_pass_is_a_normal_frozen_instance() -> None:
    entry = make_cached_pass("a", 5, "USABLE", 0, {"uuid": "a"}, "h")

    assert entry == CachedPass("a", 5, "USABLE", 0, {"uuid": "a"}, "h")
    assert type(entry) is CachedPass and entry.to_document()["pass_uuid"] == "a"
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.status = "EXPIRED"  # type: ignore[misc]
    assert dataclasses.replace(entry, status="EXPIRED").status == "EXPIRED"


def test_a_subclass_keeps_its_own_constructor() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Tagged(CachedPass):
        pass

    assert type(Tagged.from_document(DOCS[0])) is Tagged
