"""Backends of the store contract: the in-process store, SQLite (a file) and MariaDB.

MariaDB runs when ``GMALL_TEST_MYSQL_URL`` names a server (``mysql+pymysql://root@127.0.0.1:3306``);
each test gets a fresh database there. Without the URL its tests are deselected, unless
``GMALL_REQUIRE_SERVICES=1`` asks for every service, in which case a missing URL or an
unreachable server fails the run rather than passing with less tested.
"""

import contextlib

import pytest
from flask import Flask
from sqlalchemy import func, select
from support.mariadb import MYSQL_URL, REQUIRE_SERVICES, mysql_database, mysql_server  # noqa: F401 (a fixture)

from gmall_payment.adapters.inprocess.store import InMemoryDatabase
from gmall_payment.adapters.sql import fixtures
from gmall_payment.adapters.sql.engine import engine_options, prepare_engine
from gmall_payment.adapters.sql.models import Member, PointsLedger, WareSku, db
from gmall_payment.adapters.sql.store import SqlUnitOfWork


def pytest_configure(config):
    config.addinivalue_line("markers", "mariadb: needs a MariaDB/MySQL server named by GMALL_TEST_MYSQL_URL")


@pytest.hookimpl(trylast=True)  # after ``-m``: ``-m "not mariadb"`` needs no URL even when required
def pytest_collection_modifyitems(config, items):
    """Deselect the MariaDB tests when no server is named (and none is required)."""
    if MYSQL_URL:
        return
    needing = [item for item in items if item.get_closest_marker("mariadb")]
    if not needing:
        return
    if REQUIRE_SERVICES:
        raise pytest.UsageError(
            "GMALL_REQUIRE_SERVICES=1 but GMALL_TEST_MYSQL_URL is unset: "
            "set it to a MariaDB server, e.g. mysql+pymysql://root@127.0.0.1:3306"
        )
    config.hook.pytest_deselected(items=needing)
    items[:] = [item for item in items if not item.get_closest_marker("mariadb")]


class InProcessBackend:
    """The in-process store with the arranging and inspecting calls the contract uses."""

    concurrent = False  # its units of work take turns

    def __init__(self):
        self.db = InMemoryDatabase()
        self.uow = self.db.unit_of_work
        self.add_member = self.db.add_member
        self.add_sku = self.db.add_sku
        self.add_order = self.db.add_order

    def context(self):
        return contextlib.nullcontext()

    def stock_of(self, sku_id, uow=None):
        sku = self.db.tables.skus[sku_id]
        return sku.stock, sku.stock_locked, sku.sales

    def points_of(self, member_id, uow=None):
        member = self.db.tables.members[member_id]
        return member.integration, member.growth

    def awarded(self, order_sn, uow=None):
        return (order_sn, "award") in self.db.tables.ledger


class SqlBackend:
    """A SQL store; inspections given a unit of work read in its transaction, so they see its
    uncommitted changes as the in-process inspections do; the others read through ``db.session``."""

    concurrent = True
    uow = SqlUnitOfWork
    add_member = staticmethod(fixtures.add_member)
    add_sku = staticmethod(fixtures.add_sku)
    add_order = staticmethod(fixtures.add_order)

    def __init__(self, app):
        self.app = app
        # SQLite transactions take the write lock as they begin (prepare_engine): they take turns.
        self.concurrent = db.engine.dialect.name != "sqlite"

    def context(self):
        """What a thread needs to use the store: its own app context, hence its own session."""
        return self.app.app_context()

    def stock_of(self, sku_id, uow=None):
        return tuple(
            _reader(uow)
            .execute(
                select(WareSku.stock, WareSku.stock_locked, WareSku.sales).where(WareSku.sku_id == sku_id)
            )
            .one()
        )

    def points_of(self, member_id, uow=None):
        return tuple(
            _reader(uow)
            .execute(select(Member.integration, Member.growth).where(Member.id == member_id))
            .one()
        )

    def awarded(self, order_sn, uow=None):
        count = select(func.count()).select_from(PointsLedger).where(PointsLedger.order_sn == order_sn)
        return _reader(uow).scalar(count) > 0


def _reader(uow):
    """Where an inspection reads: in the unit of work's transaction if given, else the session."""
    return db.session if uow is None else uow.transaction


def _sql_backend(url: str):
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI=url, SQLALCHEMY_ENGINE_OPTIONS=engine_options(url))
    db.init_app(app)
    with app.app_context():
        prepare_engine(db.engine)
        db.create_all()
        try:
            yield SqlBackend(app)
        finally:
            db.session.remove()
            db.drop_all()
            db.engine.dispose()


@pytest.fixture(params=["inprocess", "sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def backend(request, tmp_path):
    if request.param == "inprocess":
        yield InProcessBackend()
    elif request.param == "sqlite":
        yield from _sql_backend(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        with mysql_database(request.getfixturevalue("mysql_server")) as url:
            yield from _sql_backend(url)
