"""The stores: SQLite, MySQL/MariaDB and MongoDB engines, the SQL tables two of them share, and the
codecs (token cipher, outbox records) every engine uses."""
