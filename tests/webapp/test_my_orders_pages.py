"""'My orders' in pages of a bounded number of queries: a member with many orders costs what
one with a few does (issue 14: 1,000 orders took 6,003 queries and 3.9 s on one page)."""

import contextlib
import re
import threading
from datetime import datetime
from decimal import Decimal

from sqlalchemy import event, select
from support.forms import logged_in
from support.shop import make_app

from gmall_payment.adapters.sql.models import Member, db
from gmall_payment.adapters.sql.orders import insert_orders
from gmall_payment.adapters.sql.queries import ORDERS_PER_PAGE
from gmall_payment.core.model import Order, OrderItem, OrderStatus

SHOWN = re.compile(r'id="order-([0-9A-Za-z]+)"')


def add_orders(app, count, username="demo"):
    """``count`` more paid orders of one item for the member, in one batch; their numbers, oldest first."""
    with app.app_context():
        member_id = db.session.scalar(select(Member.id).where(Member.username == username))
        orders = [
            Order(
                f"PAGED{n:08d}",
                member_id,
                OrderStatus.AWAITING_SHIPMENT,
                Decimal("9.90"),
                9,
                9,
                [OrderItem(1, "测试商品", 1, Decimal("9.90"))],
            )
            for n in range(count)
        ]
        insert_orders(db.session, [(order, ()) for order in orders], datetime.now())
        db.session.commit()
    return [order.order_sn for order in orders]


@contextlib.contextmanager
def statements(app):
    """Counts the SQL statements this thread (the test client's requests) runs inside the block:
    not the in-process worker's, whose flash-sale tick runs meanwhile."""
    counted = []
    with app.app_context():
        engine = db.engine
    me = threading.get_ident()

    def count(*_):
        if threading.get_ident() == me:
            counted.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield counted
    finally:
        event.remove(engine, "before_cursor_execute", count)


def pages(client):
    """Every page of "my orders" from the first, following 更早的订单: the numbers each shows."""
    url, shown = "/orders", []
    while url:
        page = client.get(url)
        assert page.status_code == 200
        shown.append(SHOWN.findall(page.text))
        older = re.search(r'id="older-orders" href="([^"]+)"', page.text)
        url = older and older.group(1).replace("&amp;", "&")
    return shown


def test_every_order_is_shown_once_newest_first_a_page_at_a_time(tmp_path):
    app = make_app(tmp_path)
    client = logged_in(app)
    demo_orders = SHOWN.findall(client.get("/orders").text)
    added = add_orders(app, 2 * ORDERS_PER_PAGE + 5)

    shown = pages(client)

    assert [len(page) for page in shown] == [ORDERS_PER_PAGE, ORDERS_PER_PAGE, 5 + len(demo_orders)]
    assert [sn for page in shown for sn in page] == [*reversed(added), *demo_orders]
    last = client.get(f"/orders?before={1}")  # older than the first order of all: an empty page that says so
    assert "没有更早的订单了" in last.text and 'id="newest-orders"' in last.text


def test_a_page_costs_the_same_queries_with_one_order_or_a_full_page_of_them(tmp_path):
    few, many = make_app(tmp_path / "few"), make_app(tmp_path / "many")
    add_orders(many, 10 * ORDERS_PER_PAGE)
    costs = []
    for app in (few, many):
        client = logged_in(app)
        client.get("/orders")  # warm: the worker's first request, the session's first read
        with statements(app) as counted:
            assert client.get("/orders").status_code == 200
        costs.append(len(counted))

    assert costs[0] == costs[1] <= 12, costs


def test_junk_in_before_is_the_first_page(tmp_path):
    app = make_app(tmp_path)
    client = logged_in(app)
    first = SHOWN.findall(client.get("/orders").text)
    for junk in ("abc", "-5", "0", "99999999999999999999999"):
        assert SHOWN.findall(client.get(f"/orders?before={junk}").text) in (first, []), junk
