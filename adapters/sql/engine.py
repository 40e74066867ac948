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


def lookup_options(url) -> dict:
    """Options of an engine that only reads a row by its key, as fast as the database allows:
    autocommit (no transaction to begin or roll back on return) and no pre-ping, so a read is
    one round trip; whoever uses it handles a connection the server closed (``members``). On
    MySQL its connections are kept (up to 16 a process, opened as needed; more readers at
    once wait their turn): a pool smaller than the readers would open and close one per read.
    """
    options = {**engine_options(url), "isolation_level": "AUTOCOMMIT", "pool_reset_on_return": None}
    if make_url(url).get_backend_name() in ("mysql", "mariadb"):
        options.update(pool_pre_ping=False, pool_size=16, max_overflow=0)
    return options


def prepare_engine(engine, idle_write_timeout: int = 0) -> None:
    """On MariaDB, end a session idle ``idle_write_timeout`` seconds in a write transaction; on
    SQLite, take the write lock when a transaction begins (``BEGIN IMMEDIATE``).

    A host cut off in the middle of a transaction leaves its locks held until the server ends
    the dead session, by default hours later (``wait_timeout``): every other writer of those
    rows waits meanwhile (tests/services/test_hosts.py). MySQL has no such variable.

    pysqlite begins transactions lazily, so two transactions that both read and then
    write can deadlock on the lock upgrade, and SQLite then fails one of them at once
    ("database is locked") instead of letting it wait. Taking the lock up front makes every
    writer wait its turn within the busy timeout; WAL keeps readers from blocking the writer.
    """
    if engine.dialect.name == "mysql" and idle_write_timeout:

        @event.listens_for(engine, "connect")
        def _idle_write_timeout(dbapi_connection, _record):
            if "mariadb" in dbapi_connection.get_server_info().lower():
                with dbapi_connection.cursor() as cursor:
                    cursor.execute(f"SET SESSION idle_write_transaction_timeout = {int(idle_write_timeout)}")

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
