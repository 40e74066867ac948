"""Engine options per database, for ``SQLALCHEMY_ENGINE_OPTIONS``, and what ``prepare_engine``
adds to an engine made with them (both, always)."""

import sys
import time

from pymysql.constants.SERVER_STATUS import SERVER_STATUS_IN_TRANS
from sqlalchemy import event, exc
from sqlalchemy.engine import make_url

#: A pooled MySQL connection idle longer than this is pinged before it is used: the server, or a
#: proxy, may have closed it meanwhile. One in steady use is not (a ping is a round trip).
PING_AFTER_IDLE_SECONDS = 1.0


#: Connections a process keeps open (``DATABASE_POOL_SIZE``), and how many more it may open
#: for a while (closed again on return).
POOL_SIZE, POOL_OVERFLOW = 16, 10


def engine_options(url, pool_size: int = POOL_SIZE) -> dict:
    """Options that make the store's compare-and-set rules hold on this database.

    MySQL runs READ COMMITTED so that a re-read after a lost insert race sees the winner's
    row (REPEATABLE READ would show the snapshot from before it); a connection idle for a
    while is pinged, and recycled hourly, which survives the server closing idle
    connections; the pool's rollback on return is ``prepare_engine``'s, sent only when a
    transaction is open. The pool keeps ``pool_size`` connections: one opened beyond them is
    closed on return, and opening one costs PyMySQL about 30 ms of CPU (it builds a TLS
    context even for a server without TLS), so a dramatiq process with more threads than
    SQLAlchemy's default five spent a quarter of its CPU connecting. SQLite writers wait for the file lock (30 s) instead of failing at
    once with "database is locked".
    """
    backend = make_url(url).get_backend_name()
    if backend in ("mysql", "mariadb"):
        return {
            "isolation_level": "READ COMMITTED",
            "pool_pre_ping": False,
            "pool_reset_on_return": None,
            "pool_recycle": 3600,
            "pool_size": pool_size,
            "max_overflow": POOL_OVERFLOW,
        }
    if backend == "sqlite":
        return {"connect_args": {"timeout": 30}}
    return {}


def refuse_blocking_driver(url) -> None:
    """ValueError naming DATABASE_URL for mysqlclient (``mysql+mysqldb``) in a process gevent has
    patched (gunicorn's gevent workers): a C driver waits on the database without yielding, so
    one query would hold up every request of the worker. It pays on the dramatiq workers'
    threads only (docs/deployment.md)."""
    monkey = sys.modules.get("gevent.monkey")
    if make_url(url).get_driver_name() == "mysqldb" and monkey and monkey.is_module_patched("socket"):
        raise ValueError(
            "DATABASE_URL: mysql+mysqldb (mysqlclient) blocks every request of a gevent worker while "
            "it waits on the database; serve the web with mysql+pymysql, and give mysqldb to the "
            "dramatiq workers only"
        )


def refuse_blocking_connections(engine) -> None:
    """``refuse_blocking_driver`` again before each connection ``engine`` opens: gevent may patch
    the process after the app was made (gunicorn's ``--preload`` makes it in the master; each
    worker patches itself after the fork), and the check when the settings are read saw no
    gevent then."""
    if engine.url.get_driver_name() != "mysqldb":
        return

    @event.listens_for(engine, "do_connect")
    def _refuse(*_):
        refuse_blocking_driver(engine.url)


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
    """Refuse mysqlclient's connections in a gevent worker (``refuse_blocking_connections``).
    On MySQL, ping a connection idle for a while before use and roll back only an open
    transaction on return (``engine_options``); on MariaDB, end a session idle
    ``idle_write_timeout`` seconds in a write transaction; on SQLite, take the write lock when
    a transaction begins (``BEGIN IMMEDIATE``).

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout and its reset rolls back at every
    return, even right after a commit: two of the fifteen round trips of a notification
    (benchmarks/notify_pipeline.py), each as dear as a statement.

    A host cut off in the middle of a transaction leaves its locks held until the server ends
    the dead session, by default hours later (``wait_timeout``): every other writer of those
    rows waits meanwhile (tests/services/test_hosts.py). MySQL has no such variable.

    pysqlite begins transactions lazily, so two transactions that both read and then
    write can deadlock on the lock upgrade, and SQLite then fails one of them at once
    ("database is locked") instead of letting it wait. Taking the lock up front makes every
    writer wait its turn within the busy timeout; WAL keeps readers from blocking the writer.
    """
    refuse_blocking_connections(engine)
    if engine.dialect.name == "mysql":
        _ping_when_idle(engine)
        _roll_back_open_transactions(engine)
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


def _ping_when_idle(engine) -> None:
    """SQLAlchemy's pessimistic disconnect handling, for connections idle a while only: a
    failed ping makes the pool replace the connection (``DisconnectionError``)."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection, record, _proxy):
        if time.monotonic() - record.info.get("idle_since", time.monotonic()) <= PING_AFTER_IDLE_SECONDS:
            return
        try:
            dbapi_connection.ping(False)  # no reconnect: the pool makes a new connection
        except Exception as error:
            raise exc.DisconnectionError() from error


def _roll_back_open_transactions(engine) -> None:
    """The pool's reset on return, sent only while the server reports a transaction open
    (PyMySQL keeps its last status); a driver that does not report it is always rolled back."""

    @event.listens_for(engine, "reset")
    def _reset(dbapi_connection, _record, state):
        if state.terminate_only or state.transaction_was_reset:
            return
        status = getattr(dbapi_connection, "server_status", None)
        if status is None or status & SERVER_STATUS_IN_TRANS:
            dbapi_connection.rollback()
