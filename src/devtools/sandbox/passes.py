"""Deterministic, realistic pass objects in the shape of reference/sample-passes.json."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.free_tickets import DEFAULT_FREE_TICKET_PRODUCT_UUIDS

FREE_TICKET_PRODUCT_UUIDS: tuple[str, ...] = tuple(sorted(DEFAULT_FREE_TICKET_PRODUCT_UUIDS))

#: Every generated pass was created within this window, so caches sort them meaningfully.
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
_WINDOW_SECONDS = 300 * 24 * 3600
_RIDER_TYPES = ("ADULT", "ADULT", "ADULT", "SENIOR", "YOUTH", "REDUCED")
#: Share of users owning at least one free-ticket pass.
_FREE_OWNER_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class Product:
    uuid: str
    name: str
    fare: float | int  # floats and ints both occur, and `7.0` exercises JS number printing
    validity: timedelta


PAID_PRODUCTS: tuple[Product, ...] = (
    Product("8c2d1e44-77b0-4d4e-a3f1-0c5e9b6a2d10", "METRO Local 1-Ride", 1.25, timedelta(hours=3)),
    Product("3f6a9b12-5c4d-4e7f-8a1b-2c3d4e5f6a71", "METRO Reduced 1-Ride", 0.6, timedelta(hours=3)),
    Product("b7e1c2d3-4f5a-4b6c-9d7e-8f9a0b1c2d82", "METRO Day Pass", 3, timedelta(days=1)),
    Product("c4d5e6f7-a8b9-4c0d-8e1f-2a3b4c5d6e93", "METRO 7-Day Pass", 7.0, timedelta(days=7)),
    Product("d1e2f3a4-b5c6-4d7e-8f9a-0b1c2d3e4fa4", "METRO Express 1-Ride", 4.5, timedelta(hours=3)),
)
FREE_PRODUCTS: tuple[Product, ...] = (
    Product(FREE_TICKET_PRODUCT_UUIDS[0], "METRO Free Ride (loyalty)", 0, timedelta(hours=3)),
    Product(FREE_TICKET_PRODUCT_UUIDS[1], "METRO Free Day Pass (promo)", 0, timedelta(days=1)),
)


def iso_z(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a `Z`, as Bytemark's sample payloads print it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def random_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def make_pass(rng: random.Random, product: Product, status: str, created: datetime) -> dict[str, Any]:
    activated: datetime | None = None
    if status == "USABLE":
        expiration = created + timedelta(days=365)
    else:
        activated = created + timedelta(seconds=rng.randrange(60, 3 * 24 * 3600))
        expiration = activated + product.validity
    return {
        "uuid": random_uuid(rng),
        "product_uuid": product.uuid,
        "order_uuid": random_uuid(rng),
        "status": status,
        "time_created": iso_z(created),
        "time_activated": iso_z(activated) if activated else None,
        "time_expiration": iso_z(expiration),
        "activation_count": 0 if activated is None else 1,
        "max_activations": 1,
        "rider_type": rng.choice(_RIDER_TYPES),
        "product": {
            "name": product.name,
            "fare": product.fare,
            "currency": "USD",
            "fare_medium": "MOBILE",
        },
    }


def generate_user_passes(seed: int, user_id: int, current: int, expired: int) -> list[dict[str, Any]]:
    """`current` USABLE/ACTIVE passes then `expired` EXPIRED ones, the same for the same
    (seed, user_id). Creation times are random, not sorted, as an upstream may return them."""
    rng = random.Random(f"bytemark-sandbox:{seed}:{user_id}")
    owns_free = current > 0 and rng.random() < _FREE_OWNER_SHARE
    free_index = rng.randrange(current) if owns_free else -1
    passes: list[dict[str, Any]] = []
    for index in range(current):
        product = rng.choice(FREE_PRODUCTS) if index == free_index else rng.choice(PAID_PRODUCTS)
        created = _EPOCH + timedelta(seconds=rng.randrange(_WINDOW_SECONDS), milliseconds=rng.randrange(1000))
        passes.append(make_pass(rng, product, rng.choice(("USABLE", "USABLE", "ACTIVE")), created))
    for _ in range(expired):
        created = _EPOCH + timedelta(seconds=rng.randrange(_WINDOW_SECONDS))
        passes.append(make_pass(rng, rng.choice(PAID_PRODUCTS), "EXPIRED", created))
    return passes


def generate_free_pass(rng: random.Random, now: datetime) -> dict[str, Any]:
    """A freshly issued free-ticket pass, as a loyalty reward would appear."""
    return make_pass(rng, rng.choice(FREE_PRODUCTS), "USABLE", now)
