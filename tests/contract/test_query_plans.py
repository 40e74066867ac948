"""On MariaDB, with a history of thousands of rows, no query of "my orders", the operator's
filters, expiry or the flash-sale tick scans a whole table (EXPLAIN of each statement they
send). Cost that grows with history is what issue 14 measured: 6,003 queries for one page,
the tick reading every closed flash-sale order each second."""

import threading
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, insert, select, text
from support.forms import logged_in
from support.mariadb import mysql_database
from support.shop import make_app

from gmall_payment.adapters.sql import fixtures, queries
from gmall_payment.adapters.sql.models import (
    Member,
    PaymentInfo,
    PaymentRefund,
    db,
)
from gmall_payment.adapters.sql.seckill import SeckillSale, SqlSeckillOrders, link
from gmall_payment.adapters.sql.store import SqlUnitOfWork
from gmall_payment.core.seckill import SeckillOrderStatus

pytestmark = pytest.mark.mariadb

HISTORY = 3000  # rows of each kind: enough for the optimizer to prefer an index where one serves


def add_history(app):
    """Many paid and fulfilled orders of the demo member (their locks, points, trace, payments
    — a few flagged or owed back — and notifications) and closed flash-sale orders whose units
    are back (a few not yet)."""
    now = datetime.now()
    with app.app_context():
        member_id = db.session.scalar(select(Member.id).where(Member.username == "demo"))
        sns = [f"H{n:09d}" for n in range(HISTORY)]
        fixtures.add_paid_history(member_id, sns, now - timedelta(days=30), flagged_every=500, owed_every=700)
        payments = dict(db.session.execute(select(PaymentInfo.order_sn, PaymentInfo.id)).all())
        db.session.execute(
            insert(PaymentRefund),
            [
                {
                    "payment_id": payments[sn],
                    "order_sn": sn,
                    "out_request_no": f"R{sn}",
                    "amount": Decimal("1.00"),
                    "reason": "shopper",
                    "status": 1,
                    "answer": "",
                    "create_time": now,
                    "update_time": now,
                }
                for sn in sns[::3]
            ],
        )
        db.session.execute(
            insert(SeckillSale),
            [
                {
                    "sku_id": 1,
                    "title": f"往期秒杀 {n}",
                    "price": Decimal("1.00"),
                    "units": 10,
                    "start_time": now - timedelta(days=400 - n / 10),
                    "end_time": now - timedelta(days=400 - n / 10, hours=-1),
                }
                for n in range(HISTORY)
            ],
        )
        db.session.execute(
            insert(link),
            [
                {
                    "order_sn": f"S{n:09d}",
                    "sale_id": 100 + n % 300,
                    "member_id": 10_000 + n,
                    "sku_id": 1,  # past sales
                    "status": int(SeckillOrderStatus.CLOSED),
                    "holding": None,
                    "reserved_time": now,
                    "returned_time": None if n % 1000 == 0 else now,
                }
                for n in range(HISTORY)
            ],
        )
        db.session.commit()
        for table in (
            "oms_order",
            "oms_order_item",
            "payment_info",
            "sms_seckill_order",
            "wms_stock_lock",
            "ums_points_ledger",
            "fulfilment_trace",
            "payment_notification",
            "payment_refund",
            "sms_seckill_sale",
        ):
            db.session.execute(text(f"ANALYZE TABLE {table}"))


def whole_table_scans(engine, work) -> list:
    """Run ``work``; EXPLAIN each SELECT it sent (this thread's: the shop's in-process worker
    runs its own jobs meanwhile); the (statement, table) of every full scan."""
    sent, caller = [], threading.get_ident()

    def keep(_conn, _cursor, statement, parameters, _context, _many):
        if threading.get_ident() == caller and statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    assert sent, "the work sent no SELECT"
    scans = []
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        for statement, parameters in sent:
            cursor.execute("EXPLAIN " + statement, parameters)
            columns = [column[0] for column in cursor.description]
            for row in cursor.fetchall():
                plan = dict(zip(columns, row, strict=True))
                if plan["type"] in ("ALL", "index") and plan["table"]:
                    scans.append(
                        (" ".join(statement.split())[:160], plan["table"], plan["type"], plan["Extra"])
                    )
    finally:
        connection.close()
    return scans


@pytest.fixture
def shop(tmp_path, mysql_server):
    with mysql_database(mysql_server) as url:
        app = make_app(tmp_path, DATABASE_URL=url)
        add_history(app)
        yield app
        app.extensions["gmall"].bus.close()
        with app.app_context():
            db.engine.dispose()


def test_my_orders_reads_a_page_not_the_history(shop):
    client = logged_in(shop)
    with shop.app_context():
        engine = db.engine

    def pages():
        first = client.get("/orders")
        assert (
            first.status_code == 200
            and first.text.count('class="card order-card"') == queries.ORDERS_PER_PAGE
        )
        assert client.get("/orders?before=2000").status_code == 200

    assert whole_table_scans(engine, pages) == []


@pytest.mark.parametrize("attention", ["flagged", "owed", "attention"])
def test_the_operators_filters_read_the_payments_they_show(shop, attention):
    with shop.app_context():
        found = []
        assert whole_table_scans(db.engine, lambda: found.extend(queries.payments(attention=attention))) == []
        assert found and len(found) < 20


def test_expiry_and_the_tick_read_what_is_due(shop):
    with shop.app_context():

        def due():
            with SqlUnitOfWork() as uow:
                uow.orders.awaiting_payment_since(datetime.now() - timedelta(minutes=30), 100)
            assert len(SqlSeckillOrders().unreturned(100)) == 3

        assert whole_table_scans(db.engine, due) == []


def test_the_click_loads_only_the_members_whose_sessions_ended_lately(shop):
    """What each web process loads of the ended sessions (adapters/session_cache.py) reads those
    members, not every member who ever logged out."""
    now = datetime.now()
    with shop.app_context():
        db.session.execute(
            insert(Member),
            [
                {
                    "username": f"h{n}",
                    "password_hash": "x",
                    "integration": 0,
                    "growth": 0,
                    "session_epoch": 1,
                    "session_ended_time": now if n % 100 == 0 else now - timedelta(days=60 + n % 300),
                }
                for n in range(HISTORY)
            ]
            + [  # never logged out, and logged out by code from before revision 0010 (no time)
                {
                    "username": f"n{n}",
                    "password_hash": "x",
                    "integration": 0,
                    "growth": 0,
                    "session_epoch": int(n % 100 == 0),
                    "session_ended_time": None,
                }
                for n in range(HISTORY)
            ],
        )
        db.session.commit()
        db.session.execute(text("ANALYZE TABLE ums_member"))
    epochs, found = shop.extensions["sessions"].read, {}

    def load():
        found.update(epochs.ended_since(now - timedelta(days=31)))

    assert whole_table_scans(epochs.engine, load) == []
    assert len(found) == 2 * (HISTORY // 100)
