"""The shop's MariaDB pool (``engine.prepare_engine``): a connection in steady use costs no ping
and no rollback on return; one idle a while is pinged, and replaced if the server closed it;
one returned inside a transaction is rolled back; as many at once as a dramatiq process's
threads are kept, not opened again."""

import threading

import pymysql
import pytest
from sqlalchemy import event, text
from support.mariadb import mysql_database
from support.shop import make_app

from gmall_payment.adapters.sql import engine as engines
from gmall_payment.adapters.sql import fixtures
from gmall_payment.adapters.sql.models import db

pytestmark = pytest.mark.mariadb


@pytest.fixture
def shop(tmp_path, mysql_server):
    with mysql_database(mysql_server) as url:
        app = make_app(tmp_path, DATABASE_URL=url)
        try:
            with app.app_context():
                fixtures.add_member(7, "seven")
                db.session.commit()
                db.session.remove()
                yield app
        finally:
            app.extensions["gmall"].bus.close()
            with app.app_context():
                db.engine.dispose()


@pytest.fixture
def calls(monkeypatch):
    """The pings and rollbacks PyMySQL sends, by name."""
    sent = []
    for name in ("ping", "rollback"):
        original = getattr(pymysql.connections.Connection, name)

        def counted(connection, *args, _original=original, _name=name, **kwargs):
            sent.append(_name)
            return _original(connection, *args, **kwargs)

        monkeypatch.setattr(pymysql.connections.Connection, name, counted)
    return sent


def transaction():
    """What a request does: a transaction that commits, its connection back to the pool."""
    db.session.execute(text("UPDATE ums_member SET integration = integration + 1 WHERE id = 7"))
    db.session.commit()
    db.session.remove()


def test_back_to_back_transactions_send_no_ping_and_no_rollback(shop, calls):
    transaction()  # the pool's connection, made
    calls.clear()
    for _ in range(5):
        transaction()
    assert calls == []
    assert db.session.execute(text("SELECT integration FROM ums_member WHERE id = 7")).scalar() == 6


def test_a_connection_idle_a_while_is_pinged_and_replaced_if_the_server_closed_it(
    shop, calls, mysql_server, monkeypatch
):
    thread_id = db.session.connection().connection.dbapi_connection.thread_id()
    db.session.remove()  # the session rolls back the transaction it began
    with mysql_server.connect() as admin:
        admin.exec_driver_sql(f"KILL {thread_id}")
    calls.clear()
    monkeypatch.setattr(engines, "PING_AFTER_IDLE_SECONDS", 0.0)  # every return counts as idle
    transaction()  # no error: the ping failed, and the pool connected anew
    assert calls == ["ping"]
    assert db.session.connection().connection.dbapi_connection.thread_id() != thread_id
    assert db.session.execute(text("SELECT integration FROM ums_member WHERE id = 7")).scalar() == 1


def test_a_connection_returned_inside_a_transaction_is_rolled_back(shop, calls):
    connection = db.engine.raw_connection()
    cursor = connection.cursor()
    cursor.execute("UPDATE ums_member SET integration = 99 WHERE id = 7")  # its row lock held
    cursor.close()
    connection.close()  # back to the pool, never committed
    assert calls == ["rollback"]
    with db.engine.connect() as other:
        other.execute(text("SET SESSION innodb_lock_wait_timeout = 2"))
        assert other.execute(text("SELECT integration FROM ums_member WHERE id = 7")).scalar() == 0
        assert other.execute(text("UPDATE ums_member SET integration = 1 WHERE id = 7")).rowcount == 1
        other.commit()


def test_eight_threads_at_once_reuse_the_connections_they_opened(shop):
    opened, rounds, threads = [], 5, 8  # a dramatiq process's default threads
    event.listen(db.engine, "connect", lambda *_: opened.append(1))
    together = threading.Barrier(threads)

    def work():
        with shop.app_context():
            for _ in range(rounds):
                together.wait(10)
                transaction()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert len(opened) <= threads  # SQLAlchemy's default pool (5) would open 3 more every round
    assert (
        db.session.execute(text("SELECT integration FROM ums_member WHERE id = 7")).scalar()
        == rounds * threads
    )
