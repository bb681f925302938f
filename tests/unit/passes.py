"""Builders of pass payloads shaped like Bytemark's (see shared/reference/sample-passes.json)."""

from __future__ import annotations

from typing import Any

FREE_PRODUCT = "2417edb7-856c-43ee-b3df-c508b8be259b"
PAID_PRODUCT = "8c2d1e44-77b0-4d4e-a3f1-0c5e9b6a2d10"


def a_pass(
    uuid: str,
    *,
    created: str | None = "2026-11-20T14:05:32.000Z",
    status: str = "USABLE",
    product: str = PAID_PRODUCT,
    **extra: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {"uuid": uuid, "product_uuid": product, "status": status}
    if created is not None:
        payload["time_created"] = created
    payload["product"] = {"name": "METRO Local 1-Ride", "fare": 1.25, "currency": "USD"}
    payload.update(extra)
    return payload
