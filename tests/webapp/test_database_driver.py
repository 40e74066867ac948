"""mysqlclient (``mysql+mysqldb``) is refused where gevent has patched the process: a C driver
would hold up every request of a gevent worker while it waits on the database."""

import sys
import types

import pytest
from sqlalchemy import create_engine
from support.shop import make_app

from gmall_payment.adapters.sql.engine import prepare_engine, refuse_blocking_driver

MYSQLDB = "mysql+mysqldb://gmall@127.0.0.1:3306/gmall"


@pytest.fixture
def gevent_patched(monkeypatch):
    """This process as gunicorn's gevent worker leaves it: gevent's socket in place."""
    monkey = types.ModuleType("gevent.monkey")
    monkey.is_module_patched = lambda name: name == "socket"
    monkeypatch.setitem(sys.modules, "gevent.monkey", monkey)


def test_a_gevent_worker_does_not_start_on_mysqlclient(tmp_path, gevent_patched):
    with pytest.raises(ValueError, match="DATABASE_URL: mysql\\+mysqldb .* gevent worker"):
        make_app(tmp_path, DATABASE_URL=MYSQLDB)


def test_pymysql_under_gevent_and_mysqlclient_on_threads_are_accepted(monkeypatch, gevent_patched):
    refuse_blocking_driver("mysql+pymysql://gmall@127.0.0.1:3306/gmall")
    monkeypatch.delitem(sys.modules, "gevent.monkey")  # a dramatiq worker: threads, no gevent
    refuse_blocking_driver(MYSQLDB)


class NoServer(Exception):
    """What the stand-in driver raises when asked to connect."""


def stand_in_mysqldb():
    """A DB-API module in mysqlclient's place that records the connections asked of it."""
    module = types.ModuleType("MySQLdb")
    module.paramstyle, module.asked = "format", []
    module.Error = type("Error", (Exception,), {})  # what SQLAlchemy catches of a driver's

    def connect(*args, **kwargs):
        module.asked.append(kwargs)
        raise NoServer()

    module.connect = connect
    return module


def test_a_connection_opened_after_gevent_patched_the_process_is_refused(monkeypatch, gevent_patched):
    """gunicorn --preload makes the app in its master, before each worker patches itself."""
    driver = stand_in_mysqldb()
    engine = create_engine(MYSQLDB, module=driver)
    prepare_engine(engine)
    with pytest.raises(ValueError, match="DATABASE_URL: mysql\\+mysqldb .* gevent worker"):
        engine.connect()
    assert driver.asked == []  # refused before the driver could block
    monkeypatch.delitem(sys.modules, "gevent.monkey")
    with pytest.raises(NoServer):
        engine.connect()
    assert len(driver.asked) == 1
