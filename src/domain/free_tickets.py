"""Which products are free-ticket rewards (notified to the loyalty system when newly seen)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from domain.model import Payload

DEFAULT_FREE_TICKET_PRODUCT_UUIDS: frozenset[str] = frozenset(
    {
        "2417edb7-856c-43ee-b3df-c508b8be259b",
        "654b9f9d-5972-445b-8c6b-5c29a35c7751",
    }
)


@dataclass(frozen=True, slots=True)
class FreeTicketPolicy:
    product_uuids: frozenset[str] = DEFAULT_FREE_TICKET_PRODUCT_UUIDS

    @classmethod
    def of(cls, product_uuids: Iterable[str]) -> FreeTicketPolicy:
        return cls(frozenset(u.strip().lower() for u in product_uuids if u.strip()))

    def is_free(self, payload: Payload) -> bool:
        product = payload.get("product_uuid")
        return isinstance(product, str) and product.lower() in self.product_uuids
