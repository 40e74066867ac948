"""On SQLite a unit of work runs in the app context's session (``store._transaction``), whose
write lock is the whole file: on a connection of its own it would wait for the session's."""

from sqlalchemy import text
from support.shop import make_app

from gmall_payment.adapters.sql import fixtures
from gmall_payment.adapters.sql.models import db
from gmall_payment.adapters.sql.store import SqlUnitOfWork


def test_on_sqlite_a_unit_of_work_runs_in_the_session_and_its_write_lock(tmp_path):
    app = make_app(tmp_path)
    try:
        with app.app_context():
            fixtures.add_member(7, "seven")
            with SqlUnitOfWork() as uow:  # the session idle: the unit of work begins it
                uow.transaction.execute(text("UPDATE ums_member SET integration = 2 WHERE id = 7"))
                assert db.session().in_transaction()
                uow.commit()
            db.session.execute(text("UPDATE ums_member SET integration = 3 WHERE id = 7"))  # the lock held
            with SqlUnitOfWork() as uow:
                uow.transaction.execute(
                    text("UPDATE ums_member SET integration = integration + 1 WHERE id = 7")
                )
                uow.commit()
            assert db.session.execute(text("SELECT integration FROM ums_member WHERE id = 7")).scalar() == 4
    finally:
        app.extensions["gmall"].bus.close()
