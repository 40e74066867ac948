"""Helpers shared by the web tests: a shop made from test settings, a logged-in browser."""

import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

import requests
from sqlalchemy import select

from gmall_payment.adapters.sql import demo
from gmall_payment.adapters.sql.models import Member, Order, OutboxEvent, PaymentInfo, PaymentNotification, db
from gmall_payment.plugins import signing
from gmall_payment.plugins.mockpay.sandbox import SandboxTrade, signed_notification
from gmall_payment.webapp import create_app


def _generated_keys() -> Path:
    """Throw-away key pairs made once per test run, laid out as the plugins keep them."""
    global _KEYS
    if _KEYS is None:
        _KEYS = Path(tempfile.mkdtemp(prefix="gmall-test-keys-"))
        for folder, stem in (("mockpay", "mockpay"), ("alipay", "merchant"), ("alipay", "gateway")):
            signing.ensure_key_pair(_KEYS / folder, stem)
    return _KEYS


_KEYS = None


def make_app(tmp_path, **overrides):
    # Generating RSA keys for every test's instance folder would dominate the suite's time.
    shutil.copytree(_generated_keys(), tmp_path / "instance", dirs_exist_ok=True)
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
        payments = [(p.order_sn, p.payment_status, p.trade_no) for p in db.session.scalars(select(PaymentInfo))]
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
        return list(db.session.scalars(
            select(Order.order_sn).where(Order.member_id == member.id, Order.status == 0).order_by(Order.id)
        ))


def notify_params(payment, key, **changes):
    """mockpay's notification that ``payment`` was paid, with ``changes``, signed with ``key``."""
    trade = SandboxTrade(payment.out_trade_no, "MOCK" + payment.out_trade_no, payment.total_amount,
                         payment.subject, datetime.now())
    return signed_notification(trade, "mockpay-sandbox", key, **changes)
