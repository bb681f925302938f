"""The sweep of `bytemark_outbox_delivered` on MySQL/MariaDB."""

from __future__ import annotations

from adapters.mysql.dialect import MysqlDialect
from adapters.sql.delivered import DeliveredIdTable


class MysqlDeliveredIds(MysqlDialect, DeliveredIdTable):
    bounded_delete = "DELETE FROM bytemark_outbox_delivered WHERE delivered_at < ? LIMIT ?"
