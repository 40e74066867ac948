"""mysqlclient (``mysql+mysqldb``) is refused where gevent has patched the process: a C driver
would hold up every request of a gevent worker while it waits on the database."""

import sys
import types

import pytest
from support.shop import make_app

from gmall_payment.adapters.sql.engine import refuse_blocking_driver

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
