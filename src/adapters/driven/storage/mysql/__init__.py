"""Production stores on MySQL/MariaDB through asyncmy."""
