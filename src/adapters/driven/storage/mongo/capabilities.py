"""What the MongoDB-wire server behind MONGODB_URL can do, decided once per process
(MONGODB_PROFILE): the composition root picks each adapter's strategies from it, so a real
MongoDB never pays for what FerretDB v1 needs (see ferretdb/)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from adapters.driven.storage.mongo.database import MongoDatabase

#: MONGODB_PROFILE values; `auto` asks the server's buildInfo once, at start-up.
ProfileSetting = Literal["auto", "mongodb", "ferretdb"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    profile: Literal["mongodb", "ferretdb"]
    #: An update filtered on user_id and version matches and writes as one atomic step.
    atomic_conditional_update: bool
    #: Which filters the server answers without a scan: "indexed" (any indexed field), or
    #: "_id equality" (FerretDB v1 on SQLite pushes only that down; every other filter scans).
    filters_without_scan: Literal["indexed", "_id equality"]
    #: Writes one bulk_write may carry; None: as many as the driver sends (it splits by itself).
    writes_per_bulk: int | None
    #: True when a create_index of an existing non-unique key answers "ok" without making it unique.
    unique_index_needs_check: bool

    @property
    def indexed_filters(self) -> bool:
        return self.filters_without_scan == "indexed"


MONGODB = Capabilities(
    profile="mongodb",
    atomic_conditional_update=True,
    filters_without_scan="indexed",
    writes_per_bulk=None,
    unique_index_needs_check=False,
)

#: FerretDB v1: its handler reads, then writes (FerretDB/FerretDB#3040); it holds a pool
#: connection per write of a bulk until the command ends (100 in the pool), so 16 per command.
FERRETDB = Capabilities(
    profile="ferretdb",
    atomic_conditional_update=False,
    filters_without_scan="_id equality",
    writes_per_bulk=16,
    unique_index_needs_check=True,
)

PROFILES: dict[str, Capabilities] = {"mongodb": MONGODB, "ferretdb": FERRETDB}


async def resolve_capabilities(db: MongoDatabase, setting: ProfileSetting) -> Capabilities:
    """The named profile as is (no round trip); `auto`: FerretDB when buildInfo names its
    version (FerretDB answers with `ferretdbVersion`, MongoDB never does), else MongoDB."""
    if setting != "auto":
        return PROFILES[setting]
    return FERRETDB if await db.is_ferretdb() else MONGODB
