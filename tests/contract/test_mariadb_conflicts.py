"""A transaction MariaDB aborts to end a deadlock: the unit of work says so
(``TransactionConflict``, nothing of it kept), and a notification whose transaction was the
victim is run again and answered "success", not sent back to the provider's retry series.

The deadlock is made on purpose: another transaction takes the order's settlement row, waits
until the notification's transaction holds its payment's row and waits for that settlement,
then asks for the payment's row. The other transaction has written more rows first, so that
InnoDB picks the notification's as the victim (the lighter one)."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, func, select, text
from support.mariadb import mysql_database
from support.shop import make_app, notify_params, open_order

from gmall_payment.adapters.sql.models import OutboxEvent, PaymentInfo, PaymentNotification, db
from gmall_payment.adapters.sql.store import SqlUnitOfWork
from gmall_payment.core import events
from gmall_payment.core.errors import TransactionConflict

pytestmark = pytest.mark.mariadb
WEIGHT = 20  # rows the other transaction writes first: it outweighs the victim


@pytest.fixture
def shop(tmp_path, mysql_server):
    with mysql_database(mysql_server) as url:
        app = make_app(tmp_path, DATABASE_URL=url)
        other = create_engine(url)
        try:
            with app.app_context():
                db.session.execute(text("CREATE TABLE test_weight (n INT PRIMARY KEY) ENGINE=InnoDB"))
                db.session.commit()
                db.session.remove()
            yield app, other
        finally:
            other.dispose()
            app.extensions["gmall"].bus.close()
            with app.app_context():
                db.engine.dispose()


def _heavy_holder(other, order_sn):
    """The other transaction, begun: WEIGHT rows written, then the order's settlement row taken."""
    connection = other.connect()
    connection.execute(text("INSERT INTO test_weight VALUES " + ",".join(f"({n})" for n in range(WEIGHT))))
    connection.execute(
        text("INSERT INTO payment_settlement (order_sn, payment_id, create_time) VALUES (:o, 0, NOW())"),
        {"o": order_sn},
    )
    return connection


def _wait_for_a_lock_wait(other, timeout=20):
    deadline = time.monotonic() + timeout
    with other.connect() as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.scalar(
                text("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'")
            )
            if waiting:
                return
            time.sleep(0.2)  # InnoDB refreshes this table only when it was not read for 0.1 s
    raise AssertionError("the notification's transaction never waited for the settlement row")


def _deadlock_against(other, order_sn, payment_id, work):
    """Run ``work`` (in a thread) into a deadlock with the heavier other transaction, which
    then rolls back; ``work``'s result (or its exception, raised)."""
    holder = _heavy_holder(other, order_sn)
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(work)
        try:
            _wait_for_a_lock_wait(other)
            # Waits for the payment's row, which the notification holds: the deadlock. InnoDB
            # rolls the lighter transaction back, and this update then gets its row.
            holder.execute(text("UPDATE payment_info SET flag = 'held' WHERE id = :id"), {"id": payment_id})
        finally:
            holder.rollback()
            holder.close()
        return running.result(timeout=60)


def _started(app):
    order = open_order(app)
    with app.app_context():
        payment = app.extensions["gmall"].payments.start(order["order_sn"], "mockpay")
    return order["order_sn"], payment


def test_the_victim_s_unit_of_work_raises_transaction_conflict_and_keeps_nothing(shop):
    app, other = shop
    order_sn, payment = _started(app)

    def settle():
        with app.app_context(), SqlUnitOfWork() as uow:
            uow.payments.set_flag(payment.id, "mine")  # the payment's row, held
            uow.payments.settle_order(order_sn, payment.id)  # waits for the other's settlement
            uow.commit()

    with pytest.raises(TransactionConflict, match="1213"):
        _deadlock_against(other, order_sn, payment.id, settle)
    with app.app_context():
        assert db.session.get(PaymentInfo, payment.id).flag is None
        assert db.session.scalar(text("SELECT COUNT(*) FROM payment_settlement")) == 0


def test_a_notification_whose_transaction_is_the_deadlock_victim_is_run_again_and_answered_success(
    shop, caplog
):
    app, other = shop
    order_sn, payment = _started(app)
    key = app.extensions["gmall"].providers.get("mockpay").config.private_key

    def notify():
        return app.test_client().post("/notify/mockpay", data=notify_params(payment, key))

    answer = _deadlock_against(other, order_sn, payment.id, notify)

    assert (answer.status_code, answer.get_data(as_text=True)) == (200, "success")
    assert "transaction aborted" in caplog.text and "(attempt 2)" in caplog.text
    with app.app_context():
        paid = db.session.get(PaymentInfo, payment.id)
        assert (paid.payment_status, paid.flag) == (1, None)
        assert db.session.scalar(text("SELECT payment_id FROM payment_settlement")) == payment.id
        logged = db.session.scalars(select(PaymentNotification.outcome)).all()
        assert logged == ["paid"]  # the aborted run's entry went with its transaction
        succeeded = db.session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.order_sn == order_sn, OutboxEvent.name == events.PAYMENT_SUCCEEDED)
        )
        assert succeeded == 1
