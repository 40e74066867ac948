"""Engine options per database, for ``SQLALCHEMY_ENGINE_OPTIONS``."""

from sqlalchemy import event
from sqlalchemy.engine import make_url


def engine_options(url) -> dict:
    """Options that make the store's compare-and-set rules hold on this database.

    MySQL runs READ COMMITTED so that a re-read after a lost insert race sees the winner's
    row (REPEATABLE READ would show the snapshot from before it); pre-ping and recycle
    survive the server closing idle connections. SQLite writers wait for the file lock
    (30 s) instead of failing at once with "database is locked".
    """
    backend = make_url(url).get_backend_name()
    if backend in ("mysql", "mariadb"):
        return {"isolation_level": "READ COMMITTED", "pool_pre_ping": True, "pool_recycle": 3600}
    if backend == "sqlite":
        return {"connect_args": {"timeout": 30}}
    return {}


def prepare_engine(engine) -> None:
    """Make SQLite take its write lock when a transaction begins (``BEGIN IMMEDIATE``).

    pysqlite begins transactions lazily, so two transactions that both read and then
    write can deadlock on the lock upgrade, and SQLite then fails one of them at once
    ("database is locked") instead of letting it wait. Taking the lock up front makes every
    writer wait its turn within the busy timeout; WAL keeps readers from blocking the writer.
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _autocommit_driver(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # SQLAlchemy, not the driver, begins transactions
        if engine.url.database not in (None, "", ":memory:"):
            dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
