"""What the SQL adapters (SQLite, MySQL) share: the table logic, written once."""
