"""The sweep of `bytemark_outbox_delivered` on MySQL/MariaDB."""

from __future__ import annotations

from adapters.driven.storage.mysql.dialect import MysqlDialect
from adapters.driven.storage.sql.delivered_ids_table import DeliveredIdTable


class MysqlDeliveredIds(MysqlDialect, DeliveredIdTable):
    bounded_delete = "DELETE FROM bytemark_outbox_delivered WHERE delivered_at < ? LIMIT ?"
