"""The shop's MariaDB pool (``engine.prepare_engine``): a connection in steady use costs no ping
and no rollback on return; one idle a while is pinged, and replaced if the server closed it;
one returned inside a transaction is rolled back; as many at once as a dramatiq process's
threads are kept, not opened again. A unit of work takes one of its own and gives it back
when it ends, unless the app context's session is already in a transaction: then it shares
that one (``store._transaction``)."""

import threading

import pymysql
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from support.buses import RecordingBus
from support.mariadb import mysql_database
from support.shop import make_app

from gmall_payment.adapters.sql import engine as engines
from gmall_payment.adapters.sql import fixtures
from gmall_payment.adapters.sql.models import db
from gmall_payment.adapters.sql.store import SqlUnitOfWork
from gmall_payment.core.events import Event

pytestmark = pytest.mark.mariadb
SELF = text("SELECT CONNECTION_ID()")


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


def integration():
    """Member 7's points as committed (read on a connection of its own)."""
    with db.engine.connect() as connection:
        return connection.execute(text("SELECT integration FROM ums_member WHERE id = 7")).scalar()


def test_a_unit_of_work_runs_on_its_own_connection_and_gives_it_back(shop):
    pool = db.engine.pool
    with SqlUnitOfWork() as uow:
        uow.transaction.execute(text("UPDATE ums_member SET integration = 5 WHERE id = 7"))
        assert pool.checkedout() == 1
        assert not db.session().in_transaction()  # the page's session was not touched
        assert integration() == 0  # uncommitted, on a connection of its own
        uow.commit()
        assert pool.checkedout() == 0  # given back with the commit
    assert integration() == 5
    with pytest.raises(LookupError), SqlUnitOfWork() as uow:
        uow.transaction.execute(text("UPDATE ums_member SET integration = 6 WHERE id = 7"))
        raise LookupError("the block fails")
    assert pool.checkedout() == 0  # and with the rollback
    assert integration() == 5


def test_inside_the_session_s_transaction_a_unit_of_work_shares_its_connection(shop):
    session_connection = db.session.execute(SELF).scalar()  # a page read through the session
    with SqlUnitOfWork() as uow:
        assert uow.transaction.execute(SELF).scalar() == session_connection
        assert db.engine.pool.checkedout() == 1
        uow.transaction.execute(text("UPDATE ums_member SET integration = 3 WHERE id = 7"))
        uow.commit()
    assert integration() == 3


def test_the_outbox_events_of_a_unit_of_work_on_its_own_connection_leave_with_its_commit(shop, monkeypatch):
    bus = RecordingBus()
    monkeypatch.setattr(shop.extensions["gmall"].relay, "bus", bus)
    with shop.extensions["gmall"].payments.uow() as uow:
        uow.outbox.add(Event("test.own-connection", "no-such-order", {}))
        uow.commit()
    assert [event.name for event in bus.published] == ["test.own-connection"]
    with db.engine.connect() as connection:
        assert (
            connection.execute(text("SELECT COUNT(*) FROM outbox_event WHERE sent_time IS NULL")).scalar()
            == 0
        )


def test_a_unit_of_work_whose_connection_the_server_killed_fails_and_the_next_one_works(shop, mysql_server):
    with pytest.raises(OperationalError), SqlUnitOfWork() as uow:
        thread_id = uow.transaction.execute(SELF).scalar()
        with mysql_server.connect() as admin:
            admin.exec_driver_sql(f"KILL {thread_id}")
        uow.transaction.execute(text("UPDATE ums_member SET integration = 9 WHERE id = 7"))
    assert db.engine.pool.checkedout() == 0
    with SqlUnitOfWork() as uow:
        assert uow.transaction.execute(SELF).scalar() != thread_id
        uow.transaction.execute(text("UPDATE ums_member SET integration = 1 WHERE id = 7"))
        uow.commit()
    assert integration() == 1
