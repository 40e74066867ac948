"""The shop's MariaDB sessions end a write transaction left idle (a host cut off mid-batch)."""

import contextlib
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from support.mariadb import mysql_database
from support.shop import make_app

from gmall_payment.adapters.sql.models import db

pytestmark = pytest.mark.mariadb


@contextlib.contextmanager
def session_of(tmp_path, mysql_server, idle_write_timeout):
    """A connection of the shop's engine on a fresh database, in the app's context."""
    with mysql_database(mysql_server) as url:
        app = make_app(tmp_path, DATABASE_URL=url, DATABASE_IDLE_WRITE_TIMEOUT_SECONDS=idle_write_timeout)
        try:
            with app.app_context(), db.engine.connect() as connection:
                yield connection
        finally:
            app.extensions["gmall"].bus.close()
            with app.app_context():
                db.engine.dispose()


def test_each_session_ends_an_idle_write_transaction_and_its_locks(tmp_path, mysql_server):
    with session_of(tmp_path, mysql_server, 1) as connection:
        assert connection.execute(text("SELECT @@SESSION.idle_write_transaction_timeout")).scalar() == 1
        connection.execute(text("UPDATE ums_member SET integration = integration + 1"))  # its locks held
        time.sleep(2.5)  # the host goes quiet
        with db.engine.connect() as other:  # the rows are free again, and unchanged
            other.execute(text("SET SESSION innodb_lock_wait_timeout = 2"))
            assert other.execute(text("SELECT SUM(integration) FROM ums_member")).scalar() == 0
            assert other.execute(text("UPDATE ums_member SET integration = 5")).rowcount >= 1
        with pytest.raises(OperationalError):  # and the server ended the quiet session
            connection.execute(text("SELECT 1"))


def test_zero_leaves_the_server_s_own_setting(tmp_path, mysql_server):
    with session_of(tmp_path, mysql_server, 0) as connection:
        own = connection.execute(text("SELECT @@GLOBAL.idle_write_transaction_timeout")).scalar()
        assert connection.execute(text("SELECT @@SESSION.idle_write_transaction_timeout")).scalar() == own
