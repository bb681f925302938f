"""Range checks on request values. Field names match the gRPC request fields."""

from __future__ import annotations

from collections.abc import Sequence

from application.errors import InvalidArgument
from application.ports import Shard

MAX_USER_ID = 2**63 - 1  # bytemark_tokens.user_id is a signed BIGINT
MIN_MAX_AGE_SECONDS = 1
MAX_MAX_AGE_SECONDS = 30 * 24 * 3600
MAX_CONCURRENCY = 512
MAX_SHARD_COUNT = 100_000
MAX_EXPLICIT_USER_IDS = 10_000


def validate_user_id(user_id: int, field: str = "user_id") -> int:
    if user_id <= 0:
        raise InvalidArgument(field, f"must be a positive user id, got {user_id}")
    if user_id > MAX_USER_ID:
        raise InvalidArgument(field, f"must be at most {MAX_USER_ID}, got {user_id}")
    return user_id


def validate_max_age(max_age_seconds: int | None) -> int | None:
    if max_age_seconds is None:
        return None
    if not MIN_MAX_AGE_SECONDS <= max_age_seconds <= MAX_MAX_AGE_SECONDS:
        raise InvalidArgument(
            "max_age_seconds",
            f"must be between {MIN_MAX_AGE_SECONDS} and {MAX_MAX_AGE_SECONDS} (0 = server default), "
            f"got {max_age_seconds}",
        )
    return max_age_seconds


def validate_concurrency(concurrency: int | None) -> int | None:
    if concurrency is None:
        return None
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InvalidArgument(
            "concurrency",
            f"must be between 1 and {MAX_CONCURRENCY} (0 = server default), got {concurrency}",
        )
    return concurrency


def validate_shard(shard_index: int, shard_count: int) -> Shard | None:
    """shard_count 0 means unsharded (then shard_index must be 0)."""
    if shard_count < 0 or shard_count > MAX_SHARD_COUNT:
        raise InvalidArgument("shard_count", f"must be between 0 and {MAX_SHARD_COUNT}, got {shard_count}")
    if shard_count == 0:
        if shard_index != 0:
            raise InvalidArgument("shard_index", f"must be 0 when shard_count is 0, got {shard_index}")
        return None
    if not 0 <= shard_index < shard_count:
        raise InvalidArgument("shard_index", f"must be in [0, shard_count={shard_count}), got {shard_index}")
    return Shard(index=shard_index, count=shard_count)


def validate_user_ids(user_ids: Sequence[int]) -> list[int]:
    if len(user_ids) > MAX_EXPLICIT_USER_IDS:
        raise InvalidArgument(
            "user_ids", f"at most {MAX_EXPLICIT_USER_IDS} ids per request, got {len(user_ids)}"
        )
    for position, user_id in enumerate(user_ids):
        validate_user_id(user_id, field=f"user_ids[{position}]")
    return list(dict.fromkeys(user_ids))  # drop repeats, keep order
