"""TokenStore contract: one suite, run against every adapter (SQLite file and MariaDB)."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from adapters.driven.storage.crypto import TokenCipher
from adapters.driven.storage.mysql.token_store import MysqlTokenStore
from adapters.driven.storage.sqlite.token_store import SqliteTokenStore
from application.errors import TokenDecryptionError
from application.outbox import RotatedToken, token_record
from application.ports import Shard
from tests.contract.conftest import OTHER_KEY, TEST_KEY, RawSql, StoreEngine

Store = SqliteTokenStore | MysqlTokenStore

ACCESS = "access-token-plaintext-AAA"
REFRESH = "refresh-token-plaintext-RRR"


async def seed(raw: RawSql, rows: Iterable[tuple[int, str | None]]) -> None:
    """Insert (user_id, token) rows in order, in one statement (ids ascend in that order)."""
    rows = list(rows)
    values = ", ".join(["(?, ?)"] * len(rows))
    await raw.execute(
        f"INSERT INTO bytemark_tokens (user_id, token) VALUES {values}",
        [value for row in rows for value in row],
    )


async def stored_row(raw: RawSql, user_id: int) -> tuple[str | None, str | None]:
    rows = await raw.fetchall(
        "SELECT token, refresh_token FROM bytemark_tokens WHERE user_id = ? ORDER BY id DESC",
        [user_id],
    )
    assert len(rows) == 1
    return rows[0][0], rows[0][1]


async def collect(store: Store, shard: Shard | None = None, batch_size: int = 1000) -> list[int]:
    return [user_id async for user_id in store.iter_user_ids_with_token(shard, batch_size)]


# --- reading -------------------------------------------------------------------------------


async def test_user_without_rows_has_no_token(token_store: Store) -> None:
    assert await token_store.get_token(1) is None


async def test_null_and_empty_tokens_mean_no_token(token_store: Store, store_engine: StoreEngine) -> None:
    await seed(store_engine.raw, [(1, None), (2, ""), (2, None)])

    assert await token_store.get_token(1) is None
    assert await token_store.get_token(2) is None
    assert await token_store.count_users_with_token() == 0
    assert await collect(token_store) == []
    assert await token_store.users_with_token([1, 2]) == set()


async def test_newest_row_with_a_token_wins(token_store: Store, store_engine: StoreEngine) -> None:
    await seed(store_engine.raw, [(7, "oldest"), (7, "newest"), (7, ""), (7, None), (8, "other")])

    token = await token_store.get_token(7)

    assert token is not None
    assert token.user_id == 7
    assert token.access_token == "newest"
    assert token.refresh_token is None
    assert token.expires_at is None


async def test_zero_date_expiry_reads_as_no_expiry(token_store: Store, store_engine: StoreEngine) -> None:
    # Legacy MySQL rows hold 0000-00-00 when sql_mode allowed it; the raw connection relaxes it.
    await store_engine.raw.execute(
        "INSERT INTO bytemark_tokens (user_id, token, token_expires_at) VALUES (?, ?, '0000-00-00 00:00:00')",
        [3, "legacy"],
    )

    token = await token_store.get_token(3)

    assert token is not None
    assert token.access_token == "legacy"
    assert token.expires_at is None


async def test_counts_riders_whose_token_expired_or_expires_before_a_moment(
    token_store: Store, store_engine: StoreEngine
) -> None:
    moment = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
    rows = [
        (1, "t", "2026-11-29 08:00:00"),  # expired
        (2, "t", "2026-11-30 11:59:59"),  # expires before the moment
        (3, "t", "2026-11-30 12:00:01"),  # after it
        (4, "t", None),  # no expiry known
        (5, "", "2026-11-29 08:00:00"),  # no token at all
        (6, "t", "0000-00-00 00:00:00"),  # legacy zero date: no expiry
    ]
    for user_id, token, expires_at in rows:
        await store_engine.raw.execute(
            "INSERT INTO bytemark_tokens (user_id, token, token_expires_at) VALUES (?, ?, ?)",
            [user_id, token, expires_at],
        )

    assert await token_store.count_tokens_expiring_before(moment) == 2


async def test_get_token_reports_when_the_row_was_last_updated(
    token_store: Store, store_engine: StoreEngine
) -> None:
    await store_engine.raw.execute(
        "INSERT INTO bytemark_tokens (user_id, token, updated_at) VALUES (?, ?, ?)",
        [9, "t", "2026-11-29 08:30:00"],
    )
    token = await token_store.get_token(9)
    assert token is not None and token.updated_at == datetime(2026, 11, 29, 8, 30, tzinfo=UTC)


# --- writing -------------------------------------------------------------------------------


async def test_save_then_get_round_trips(token_store: Store) -> None:
    expires = datetime(2031, 5, 17, 8, 30, 15, tzinfo=UTC)

    await token_store.save_tokens(42, ACCESS, REFRESH, expires)
    token = await token_store.get_token(42)

    assert token is not None
    assert (token.user_id, token.access_token, token.refresh_token) == (42, ACCESS, REFRESH)
    assert token.expires_at == expires
    assert token.expires_at.tzinfo is not None


async def test_expiry_is_stored_as_utc_to_the_second(token_store: Store) -> None:
    paris_summer = timezone(timedelta(hours=2))
    await token_store.save_tokens(
        1, ACCESS, None, datetime(2030, 7, 1, 12, 0, 0, 987654, tzinfo=paris_summer)
    )
    await token_store.save_tokens(2, ACCESS, None, datetime(2030, 7, 1, 12, 0, 0))  # naive = UTC

    first, second = await token_store.get_token(1), await token_store.get_token(2)

    assert first is not None and second is not None
    assert first.expires_at == datetime(2030, 7, 1, 10, 0, 0, tzinfo=UTC)
    assert second.expires_at == datetime(2030, 7, 1, 12, 0, 0, tzinfo=UTC)


async def test_save_without_refresh_token_or_expiry(token_store: Store) -> None:
    await token_store.save_tokens(5, ACCESS, None, None)

    token = await token_store.get_token(5)

    assert token is not None
    assert (token.access_token, token.refresh_token, token.expires_at) == (ACCESS, None, None)


async def test_save_updates_the_winning_row_in_place(token_store: Store, store_engine: StoreEngine) -> None:
    await seed(store_engine.raw, [(9, "older"), (9, "current"), (9, "")])

    await token_store.save_tokens(9, ACCESS, REFRESH, None)
    await token_store.save_tokens(9, "second-access", REFRESH, None)

    rows = await store_engine.raw.fetchall(
        "SELECT token FROM bytemark_tokens WHERE user_id = ? ORDER BY id", [9]
    )
    assert len(rows) == 3  # no row added
    assert rows[0][0] == "older"
    assert rows[1][0].startswith("enc:v1:")
    assert rows[2][0] == ""
    token = await token_store.get_token(9)
    assert token is not None and token.access_token == "second-access"


async def test_save_inserts_a_row_when_none_has_a_token(
    token_store: Store, store_engine: StoreEngine
) -> None:
    await seed(store_engine.raw, [(11, None)])

    await token_store.save_tokens(11, ACCESS, None, None)

    rows = await store_engine.raw.fetchall(
        "SELECT token, status, updated_at FROM bytemark_tokens WHERE user_id = ? ORDER BY id", [11]
    )
    assert len(rows) == 2
    assert rows[1][1] == 1  # status defaults to active
    assert rows[1][2] is not None
    token = await token_store.get_token(11)
    assert token is not None and token.access_token == ACCESS


async def test_save_rejects_an_empty_access_token(token_store: Store) -> None:
    with pytest.raises(ValueError, match="access_token"):
        await token_store.save_tokens(1, "", REFRESH, None)


# --- listing -------------------------------------------------------------------------------

# user ids deliberately out of order, with duplicates and users without a token
SEEDED = [
    (50, "t"),
    (3, "t"),
    (17, "t"),
    (3, "t2"),
    (8, ""),
    (21, None),
    (1, "t"),
    (42, "t"),
    (17, "t3"),
    (6, "t"),
]
WITH_TOKEN = [1, 3, 6, 17, 42, 50]


@pytest.mark.parametrize("batch_size", [1, 2, 3, 4, 6, 1000])
async def test_iteration_is_distinct_ascending_in_any_batch_size(
    token_store: Store, store_engine: StoreEngine, batch_size: int
) -> None:
    await seed(store_engine.raw, SEEDED)

    assert await collect(token_store, batch_size=batch_size) == WITH_TOKEN


async def test_iteration_pages_lazily(token_store: Store, store_engine: StoreEngine) -> None:
    """Keyset pagination: a user added past the cursor mid-iteration is still seen; the ids are
    not read up front."""
    await seed(store_engine.raw, [(1, "t"), (2, "t"), (3, "t")])
    seen = []
    async for user_id in token_store.iter_user_ids_with_token(batch_size=2):
        seen.append(user_id)
        if user_id == 1:
            await seed(store_engine.raw, [(99, "t")])

    assert seen == [1, 2, 3, 99]


@pytest.mark.parametrize("count", [1, 2, 3, 4])
async def test_iteration_filters_by_shard(token_store: Store, store_engine: StoreEngine, count: int) -> None:
    await seed(store_engine.raw, SEEDED)

    per_shard = [await collect(token_store, Shard(index, count), batch_size=2) for index in range(count)]

    for index, ids in enumerate(per_shard):
        assert ids == [user_id for user_id in WITH_TOKEN if Shard(index, count).owns(user_id)]
    assert sorted(user_id for ids in per_shard for user_id in ids) == WITH_TOKEN


async def test_count_users_with_token(token_store: Store, store_engine: StoreEngine) -> None:
    assert await token_store.count_users_with_token() == 0
    await seed(store_engine.raw, SEEDED)

    assert await token_store.count_users_with_token() == len(WITH_TOKEN)
    for index in range(3):
        shard = Shard(index, 3)
        expected = sum(1 for user_id in WITH_TOKEN if shard.owns(user_id))
        assert await token_store.count_users_with_token(shard) == expected


async def test_users_with_token_is_the_subset_with_a_token(
    token_store: Store, store_engine: StoreEngine
) -> None:
    await seed(store_engine.raw, SEEDED)

    assert await token_store.users_with_token([]) == set()
    assert await token_store.users_with_token([3, 8, 21, 999, 3, 50]) == {3, 50}


async def test_users_with_token_handles_long_lists(token_store: Store, store_engine: StoreEngine) -> None:
    # longer than any chunk size an adapter uses for its IN (...) lists
    await seed(store_engine.raw, [(user_id, "t") for user_id in range(1, 2501, 2)])

    found = await token_store.users_with_token(list(range(1, 2601)))

    assert found == set(range(1, 2501, 2))


# --- encryption at rest --------------------------------------------------------------------


async def test_tokens_are_encrypted_at_rest(token_store: Store, store_engine: StoreEngine) -> None:
    await token_store.save_tokens(12, ACCESS, REFRESH, None)

    token, refresh = await stored_row(store_engine.raw, 12)

    assert token is not None and refresh is not None
    assert token.startswith("enc:v1:") and refresh.startswith("enc:v1:")
    assert ACCESS not in token and REFRESH not in refresh
    assert "plaintext" not in token + refresh


async def test_legacy_plaintext_is_read_then_encrypted_on_next_save(
    token_store: Store, store_engine: StoreEngine
) -> None:
    await store_engine.raw.execute(
        "INSERT INTO bytemark_tokens (user_id, token, refresh_token) VALUES (?, ?, ?)", [13, ACCESS, REFRESH]
    )

    legacy = await token_store.get_token(13)
    assert legacy is not None
    assert (legacy.access_token, legacy.refresh_token) == (ACCESS, REFRESH)

    await token_store.save_tokens(13, legacy.access_token, legacy.refresh_token, None)

    token, refresh = await stored_row(store_engine.raw, 13)
    assert token is not None and token.startswith("enc:v1:") and ACCESS not in token
    assert refresh is not None and refresh.startswith("enc:v1:") and REFRESH not in refresh
    again = await token_store.get_token(13)
    assert again is not None and (again.access_token, again.refresh_token) == (ACCESS, REFRESH)


async def test_token_copied_to_another_user_fails_to_decrypt(
    token_store: Store, store_engine: StoreEngine
) -> None:
    await token_store.save_tokens(14, ACCESS, REFRESH, None)
    token, refresh = await stored_row(store_engine.raw, 14)
    await store_engine.raw.execute(
        "INSERT INTO bytemark_tokens (user_id, token, refresh_token) VALUES (?, ?, ?)", [15, token, refresh]
    )

    with pytest.raises(TokenDecryptionError) as caught:
        await token_store.get_token(15)

    message = str(caught.value)
    assert "TOKEN_ENCRYPTION_KEY" in message and "user 15" in message
    assert ACCESS not in message and str(token) not in message
    assert caught.value.user_id == 15
    owner = await token_store.get_token(14)  # the owner still reads it
    assert owner is not None and owner.access_token == ACCESS


async def test_encrypted_token_without_a_key_is_a_clear_error(
    token_store: Store, store_engine: StoreEngine
) -> None:
    await token_store.save_tokens(16, ACCESS, None, None)
    keyless = store_engine.token_store(TokenCipher(None))

    with pytest.raises(TokenDecryptionError, match="TOKEN_ENCRYPTION_KEY is not set") as caught:
        await keyless.get_token(16)
    assert "user 16" in str(caught.value) and ACCESS not in str(caught.value)


async def test_encrypted_token_with_another_key_is_a_clear_error(
    token_store: Store, store_engine: StoreEngine
) -> None:
    await token_store.save_tokens(17, ACCESS, None, None)
    rotated = store_engine.token_store(TokenCipher(OTHER_KEY))

    with pytest.raises(TokenDecryptionError, match="TOKEN_ENCRYPTION_KEY"):
        await rotated.get_token(17)


async def test_without_a_key_tokens_are_stored_as_plaintext(store_engine: StoreEngine) -> None:
    store = store_engine.token_store(TokenCipher(None))
    await store.create_schema()

    await store.save_tokens(18, ACCESS, REFRESH, None)

    assert await stored_row(store_engine.raw, 18) == (ACCESS, REFRESH)
    token = await store.get_token(18)
    assert token is not None and token.access_token == ACCESS


# --- schema --------------------------------------------------------------------------------


async def test_create_schema_is_idempotent_and_keeps_rows(token_store: Store) -> None:
    await token_store.save_tokens(19, ACCESS, None, None)

    await token_store.create_schema()
    await token_store.create_schema()

    token = await token_store.get_token(19)
    assert token is not None and token.access_token == ACCESS


# --- TokenCipher (engine-independent) ------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(TEST_KEY).decode(),
        base64.urlsafe_b64encode(TEST_KEY).decode(),
        base64.urlsafe_b64encode(TEST_KEY).decode().rstrip("="),
        f"  {base64.b64encode(TEST_KEY).decode()}\n",
    ],
)
def test_cipher_key_accepts_standard_and_urlsafe_base64(text: str) -> None:
    cipher = TokenCipher.from_base64(text)

    assert cipher.enabled
    assert TokenCipher(TEST_KEY).decrypt(cipher.encrypt(ACCESS, 1), 1) == ACCESS


@pytest.mark.parametrize("size", [16, 24, 32])
def test_cipher_accepts_every_aes_key_size(size: int) -> None:
    cipher = TokenCipher.from_base64(base64.b64encode(bytes(size)).decode())

    assert cipher.decrypt(cipher.encrypt(ACCESS, 7), 7) == ACCESS


@pytest.mark.parametrize(
    "text", ["not base64 at all!!", base64.b64encode(b"short").decode(), base64.b64encode(bytes(33)).decode()]
)
def test_cipher_rejects_a_bad_key_naming_the_setting(text: str) -> None:
    with pytest.raises(ValueError, match="TOKEN_ENCRYPTION_KEY") as caught:
        TokenCipher.from_base64(text)
    assert text not in str(caught.value)


@pytest.mark.parametrize("text", [None, "", "   "])
def test_cipher_without_a_key_passes_plaintext_through(text: str | None) -> None:
    cipher = TokenCipher.from_base64(text)

    assert not cipher.enabled
    assert cipher.encrypt(ACCESS, 1) == ACCESS
    assert cipher.decrypt(ACCESS, 1) == ACCESS


def test_cipher_output_is_randomised_and_never_shows_the_key() -> None:
    cipher = TokenCipher(TEST_KEY)

    assert cipher.encrypt(ACCESS, 1) != cipher.encrypt(ACCESS, 1)
    assert "enabled=True" in repr(cipher) and TEST_KEY.hex() not in repr(cipher)


@pytest.mark.parametrize("stored", ["enc:v1:", "enc:v1:!!!", "enc:v1:" + "A" * 40])
def test_cipher_rejects_corrupted_values(stored: str) -> None:
    with pytest.raises(TokenDecryptionError, match="user 3"):
        TokenCipher(TEST_KEY).decrypt(stored, 3)


async def test_a_token_record_delivered_twice_is_saved_once_and_never_rolls_back_a_newer_one(
    token_store: Store,
) -> None:
    first = token_record(31, RotatedToken("at-1", "rt-1", None), 1)
    second = token_record(31, RotatedToken("at-2", "rt-2", None), 2)
    for record in (first, second, first):
        assert record.token is not None
        await token_store.deliver_tokens(record.record_id, 31, record.token)
    token = await token_store.get_token(31)
    assert token is not None and (token.access_token, token.refresh_token) == ("at-2", "rt-2")
