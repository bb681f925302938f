"""The sweep of `bytemark_outbox_delivered` on the embedded SQLite file."""

from __future__ import annotations

from adapters.driven.storage.sql.delivered_ids_table import DeliveredIdTable
from adapters.driven.storage.sqlite.dialect import SqliteDialect


class SqliteDeliveredIds(SqliteDialect, DeliveredIdTable):
    # DELETE ... LIMIT needs a compile-time option most SQLite builds lack
    bounded_delete = (
        "DELETE FROM bytemark_outbox_delivered WHERE rowid IN"
        " (SELECT rowid FROM bytemark_outbox_delivered WHERE delivered_at < ? LIMIT ?)"
    )
