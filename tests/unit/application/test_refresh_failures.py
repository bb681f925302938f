"""Refreshes that stop on a typed error: what the caller gets, and that nothing half-written stays."""

from __future__ import annotations

import asyncio

import pytest

from application.errors import (
    ApplicationError,
    CacheNotFound,
    CacheNotStorable,
    CacheTooLarge,
    TokenDecryptionError,
)
from application.ports import UserToken
from domain.model import TicketCache
from tests.unit.application.conftest import World
from tests.unit.passes import a_pass

USER = 7


def with_user(world: World) -> None:
    world.tokens.put(USER, "tok-7")
    world.bytemark.give("tok-7", [a_pass("a")])


@pytest.mark.parametrize(
    "refusal",
    [
        CacheTooLarge(USER, 17_000_000, 16_777_216),
        CacheNotStorable(USER, "MongoDB", "a key with '.'"),
    ],
    ids=["too large", "not storable"],
)
async def test_a_cache_the_store_refuses_fails_the_refresh_naming_the_user_and_logs_nothing(
    world: World, refusal: ApplicationError
) -> None:
    with_user(world)
    await world.use_cases.build(USER)
    world.bytemark.give("tok-7", [a_pass("a"), a_pass("b")])

    async def refuse(cache: TicketCache, expected_version: int | None, *_written: object) -> TicketCache:
        raise refusal

    world.caches.save = refuse  # type: ignore[method-assign]
    with pytest.raises(type(refusal), match=f"user {USER}"):
        await world.use_cases.update(USER)
    assert world.ticket_log.entries == []
    assert [p.pass_uuid for p in world.caches.caches[USER].passes] == ["a"]


async def test_an_unreadable_stored_token_fails_the_refresh_naming_the_user(world: World) -> None:
    async def unreadable(user_id: int) -> UserToken | None:
        raise TokenDecryptionError(user_id, "cannot be decrypted with TOKEN_ENCRYPTION_KEY")

    world.tokens.get_token = unreadable  # type: ignore[method-assign]
    with pytest.raises(TokenDecryptionError, match=f"token of user {USER} cannot be decrypted"):
        await world.use_cases.check(USER)
    assert world.bytemark.fetches == []


async def test_an_update_whose_cache_is_purged_while_it_fetches_is_not_found(world: World) -> None:
    with_user(world)
    await world.use_cases.build(USER)
    gate = world.bytemark.gate = asyncio.Event()
    updating = asyncio.create_task(world.use_cases.update(USER))
    for _ in range(20):
        await asyncio.sleep(0)
    await world.caches.delete(USER)
    gate.set()

    with pytest.raises(CacheNotFound):
        await updating
    assert USER not in world.caches.caches
