"""SQL adapters on Flask-SQLAlchemy: SQLite by default, MySQL/MariaDB through PyMySQL."""
