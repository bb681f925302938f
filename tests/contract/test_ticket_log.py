"""TicketLog contract: every adapter (SQLite; FerretDB through motor and PyMongo's async client; a
real MongoDB when MONGODB_URL is set) stores entries in the TicketLogEntry document shape, in
insertion order."""

from __future__ import annotations

from typing import Any

from domain.model import Change, PassList, TicketLogEntry
from tests.contract.cache_fixtures import Backend, assert_same_json


def make_entry(
    user_id: int,
    pass_uuid: str,
    *,
    pass_list: PassList = PassList.PASSES,
    change: Change = Change.CREATED,
    status: Any = "USABLE",
    payload: dict[str, Any] | None = None,
    timestamp: int = 1_700_000_000,
) -> TicketLogEntry:
    return TicketLogEntry(
        user_id=user_id,
        pass_uuid=pass_uuid,
        list=pass_list,
        change=change,
        status=status,
        payload=payload if payload is not None else {"uuid": pass_uuid, "status": status},
        payload_hash="a" * 32,
        timestamp=timestamp,
    )


async def test_appended_entries_read_back_as_documents_in_insertion_order(backend: Backend) -> None:
    log = backend.ticket_log
    first = [
        make_entry(1, "b-second-by-name", payload={"uuid": "b", "name": "Día 🚇", "none": None, "x": 1.5}),
        make_entry(1, "a-first-by-name", pass_list=PassList.PASSES4, change=Change.UPDATED, status=None),
        make_entry(2, "someone-else"),
    ]
    later = [make_entry(1, "c-later", timestamp=1_700_000_999, status="EXPIRED")]

    await log.append(first)
    await log.append(later)

    stored = await log.entries_for_user(1)
    assert_same_json(stored, [entry.to_document() for entry in (first[0], first[1], later[0])])
    assert_same_json(await log.entries_for_user(2), [first[2].to_document()])
    assert await log.entries_for_user(3) == []


async def test_appending_nothing_writes_nothing(backend: Backend) -> None:
    await backend.ticket_log.append([])
    assert await backend.ticket_log.entries_for_user(1) == []


async def test_a_large_append_keeps_every_entry_in_order(backend: Backend) -> None:
    entries = [make_entry(5, f"pass-{i:04d}", timestamp=i) for i in range(250)]

    await backend.ticket_log.append(entries)

    stored = await backend.ticket_log.entries_for_user(5)
    assert [doc["pass_uuid"] for doc in stored] == [entry.pass_uuid for entry in entries]


async def test_integers_beyond_64_bits_in_a_logged_payload_are_kept_as_the_store_can(
    backend: Backend,
) -> None:
    payload = {"uuid": "big", "value": 2**64 + 1, "edge": -(2**63)}
    await backend.ticket_log.append([make_entry(6, "big", payload=payload)])

    (stored,) = await backend.ticket_log.entries_for_user(6)

    expected = payload if backend.keeps_ints_beyond_int64 else {**payload, "value": float(2**64 + 1)}
    assert_same_json(stored["payload"], expected)


async def test_creating_the_log_schema_again_is_harmless_and_keeps_entries(backend: Backend) -> None:
    await backend.ticket_log.append([make_entry(7, "kept")])

    await backend.create_schema()
    await backend.create_schema()

    assert [doc["pass_uuid"] for doc in await backend.ticket_log.entries_for_user(7)] == ["kept"]
    assert await backend.has_log_user_id_index()
