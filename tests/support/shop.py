"""Helpers shared by the web tests: a shop made from test settings, a logged-in browser."""

import contextlib
import re
import shutil
import tempfile
import time
from datetime import datetime
from html import unescape
from pathlib import Path

import requests
from sqlalchemy import select

from gmall_payment.adapters.sql import demo, queries
from gmall_payment.adapters.sql.models import (
    Member,
    Order,
    OutboxEvent,
    PaymentInfo,
    PaymentNotification,
    WareSku,
    db,
)
from gmall_payment.plugins import rsa2
from gmall_payment.plugins.mockpay.sandbox import SandboxTrade, signed_notification
from gmall_payment.webapp import create_app
from support.servers import serving


def _generated_keys() -> Path:
    """Throw-away key pairs made once per test run, laid out as the plugins keep them."""
    global _KEYS
    if _KEYS is None:
        _KEYS = Path(tempfile.mkdtemp(prefix="gmall-test-keys-"))
        pairs = (
            ("mockpay", "mockpay"),
            ("mockpay", "merchant"),
            ("alipay", "merchant"),
            ("alipay", "gateway"),
            ("alipay", "root_ca"),  # the offline gateway's certificate mode
            ("alipay", "class2_ca"),
        )
        for folder, stem in pairs:
            rsa2.ensure_key_pair(_KEYS / folder, stem)
    return _KEYS


_KEYS = None


def copy_test_keys(instance_path: Path) -> None:
    """Lay the run's throw-away key pairs out in an instance folder, as the plugins keep them."""
    # Generating RSA keys for every test's instance folder would dominate the suite's time.
    shutil.copytree(_generated_keys(), instance_path, dirs_exist_ok=True)


def make_app(tmp_path, **overrides):
    """The embedded default shop in ``tmp_path`` with demo data and ``overrides`` (tests that
    need one shop take the ``app`` fixture of tests/conftest.py instead)."""
    copy_test_keys(tmp_path / "instance")
    config = {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.db'}",
        "SECRET_KEY": "test-only",
        "MOCKPAY_NOTIFY_SCHEDULE": "0,0.05,0.1,0.2",
        "MOCKPAY_LATE_SECONDS": 0.3,
        **overrides,
    }
    app = create_app(config)
    with app.app_context():
        db.create_all()
        demo.seed(app.extensions["gmall"].seckill)
    return app


@contextlib.contextmanager
def served_shop(tmp_path, **overrides):
    """A shop from ``make_app`` on a real loopback server, with ``PUBLIC_URL`` set (its server
    calls the sandboxes mounted in it); yields (app, base_url). Afterwards its in-process
    worker is stopped and its sandboxes' notifications finished."""
    app = make_app(tmp_path, **overrides)
    with serving(app) as base_url:
        app.config["PUBLIC_URL"] = base_url
        try:
            yield app, base_url
        finally:
            app.extensions["gmall"].bus.close()
            for site in getattr(app.wsgi_app, "mounts", {}).values():
                if getattr(site, "notifier", None) is not None:
                    site.notifier.join(10)


def wait_for(check, timeout=10):
    """Poll ``check`` until it returns something true, and return that; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s")


def csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def browser_login(base_url, username="demo", password="demo123") -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{base_url}/login")
    response = browser.post(
        f"{base_url}/login",
        data={"username": username, "password": password, "csrf_token": csrf_token(page.text)},
    )
    assert response.url.endswith("/orders"), "login failed"
    return browser


def snapshot(app):
    """Payments, orders and the number of outbox events: what a refused notification must not change."""
    with app.app_context():
        payments = [
            (p.order_sn, p.payment_status, p.trade_no) for p in db.session.scalars(select(PaymentInfo))
        ]
        orders = [(o.order_sn, o.status) for o in db.session.scalars(select(Order))]
        return payments, orders, db.session.query(OutboxEvent).count()


def notify_log(app) -> list:
    """The notify log, oldest first, as (outcome, verified, accepted) with the row."""
    with app.app_context():
        rows = db.session.scalars(select(PaymentNotification).order_by(PaymentNotification.id)).all()
        db.session.expunge_all()
        return rows


def member_orders(app, username="demo") -> list[str]:
    """The member's orders awaiting payment, oldest first."""
    with app.app_context():
        member = db.session.scalar(select(Member).where(Member.username == username))
        return list(
            db.session.scalars(
                select(Order.order_sn)
                .where(Order.member_id == member.id, Order.status == 0)
                .order_by(Order.id)
            )
        )


def order_now(order_sn) -> dict:
    """The order as the database has it now, in the app's context: read in a transaction of its
    own (no stale snapshot), ended at once (on SQLite a transaction holds the write lock, which
    the shop's own requests would wait for)."""
    db.session.rollback()
    try:
        return queries.order_view(order_sn)
    finally:
        db.session.rollback()


def fulfilled(order_sn) -> bool:
    """Whether the order's points are awarded and its stock deducted, in the app's context."""
    order = order_now(order_sn)
    return order["points_awarded"] and all(lock["status"] == "deducted" for lock in order["stock_locks"])


def notify_params(payment, key, **changes):
    """mockpay's notification that ``payment`` was paid, with ``changes``, signed with ``key``."""
    trade = SandboxTrade(
        payment.out_trade_no,
        "MOCK" + payment.out_trade_no,
        payment.total_amount,
        payment.subject,
        datetime.now(),
    )
    return signed_notification(trade, "mockpay-sandbox", key, **changes)


# paying with mockpay over real HTTP


def open_order(app, username="demo"):
    with app.app_context():
        member = db.session.scalar(select(Member).where(Member.username == username))
        order = db.session.scalar(
            select(Order).where(Order.member_id == member.id, Order.status == 0).order_by(Order.id)
        )
        item = order.items[0]
        sku = db.session.scalar(select(WareSku).where(WareSku.sku_id == item.sku_id))
        return {
            "order_sn": order.order_sn,
            "amount": f"{order.pay_amount:.2f}",
            "quantity": item.sku_quantity,
            "integration": order.integration,
            "growth": order.growth,
            "member": (member.integration, member.growth),
            "sku": (sku.stock, sku.stock_locked, sku.sales),
            "sku_id": sku.sku_id,
        }


def shop_state(app, before):
    with app.app_context():
        member = db.session.get(
            Member, db.session.scalar(select(Order.member_id).where(Order.order_sn == before["order_sn"]))
        )
        sku = db.session.scalar(select(WareSku).where(WareSku.sku_id == before["sku_id"]))
        return (member.integration, member.growth), (sku.stock, sku.stock_locked, sku.sales)


def hidden_fields(html):
    return {name: unescape(value) for name, value in re.findall(r'name="(\w+)" value="([^"]*)"', html)}


def pay_on_cashier(browser, base_url, order_sn, scenario="normal"):
    pay_page = browser.get(f"{base_url}/pay.html", params={"orderToken": order_sn})
    assert pay_page.status_code == 200
    cashier = browser.post(
        f"{base_url}/pay/mockpay", data={"orderToken": order_sn, "csrf_token": csrf_token(pay_page.text)}
    )
    assert "/mockpay/cashier" in cashier.url and cashier.status_code == 200
    form = hidden_fields(cashier.text)
    returned = browser.post(
        f"{base_url}/mockpay/cashier", data={**form, "action": "pay", "scenario": scenario}
    )
    assert returned.status_code == 200 and "/pay/return/mockpay" in returned.url
    return pay_page, cashier, returned


def wait_until_fulfilled(browser, base_url, order_sn, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = browser.get(f"{base_url}/api/orders/{order_sn}").json()
        if view["points_awarded"] and all(lock["status"] == "deducted" for lock in view["stock_locks"]):
            return view
        time.sleep(0.05)
    raise AssertionError(f"order {order_sn} not fulfilled in {timeout}s: {view}")
