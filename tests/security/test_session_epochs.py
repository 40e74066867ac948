"""The click's read of a member's session generation (``members.SessionEpochs``): one
primary-key read, on SQLite and on MariaDB, and still right after the server closed its
connection (it keeps them, without pre-ping)."""

import pytest
from sqlalchemy import event
from support.mariadb import mysql_database, mysql_server  # noqa: F401 (a fixture)

from gmall_payment.adapters.sql import fixtures, members
from gmall_payment.adapters.sql.members import SessionEpochs
from gmall_payment.adapters.sql.models import db
from gmall_payment.webapp import create_app


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shop.db'}"
    else:
        with mysql_database(request.getfixturevalue("mysql_server")) as url:
            yield url


@pytest.fixture
def shop(database_url, tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-only",
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SANDBOXES": False,
        }
    )
    with app.app_context():
        db.create_all()
        fixtures.add_member(7, "seven")
        yield app
        db.session.remove()
        db.engine.dispose()


def test_the_read_follows_the_generation_and_knows_no_stranger(shop, database_url):
    epochs = SessionEpochs(database_url)
    try:
        assert (epochs(7), epochs(8)) == (0, None)
        members.end_sessions(7)
        assert epochs(7) == 1
    finally:
        epochs.close()


@pytest.mark.mariadb
@pytest.mark.parametrize("database_url", ["mariadb"], indirect=True)
def test_a_connection_the_server_closed_is_replaced_by_the_read(shop, database_url, mysql_server):  # noqa: F811
    epochs = SessionEpochs(database_url)
    try:
        assert epochs(7) == 0
        connection = epochs.engine.raw_connection()
        thread_id = connection.dbapi_connection.thread_id()
        connection.close()
        with mysql_server.connect() as admin:
            admin.exec_driver_sql(f"KILL {thread_id}")
        assert epochs(7) == 0
        assert epochs.engine.pool.checkedout() == 0
    finally:
        epochs.close()


def test_connections_opened_ahead_serve_that_many_reads_at_once(shop, database_url):
    epochs = SessionEpochs(database_url)
    try:
        epochs.open(3)
        assert epochs.engine.pool.checkedin() == 3
        opened = []
        event.listen(epochs.engine, "connect", lambda *_: opened.append(1))
        held = [epochs.engine.raw_connection() for _ in range(3)]  # three readers at once
        for connection in held:
            connection.close()
        assert epochs(7) == 0 and opened == []
    finally:
        epochs.close()
