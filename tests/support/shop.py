"""Helpers shared by the web tests: a shop made from test settings, a logged-in browser."""

import re
from datetime import datetime

import requests

from gmall_payment.adapters.sql import demo
from gmall_payment.adapters.sql.models import db
from gmall_payment.plugins.mockpay.sandbox import SandboxTrade, signed_notification
from gmall_payment.webapp import create_app


def make_app(tmp_path, **overrides):
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
        demo.seed()
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


def notify_params(payment, key, **changes):
    """mockpay's notification that ``payment`` was paid, with ``changes``, signed with ``key``."""
    trade = SandboxTrade(payment.out_trade_no, "MOCK" + payment.out_trade_no, payment.total_amount,
                         payment.subject, datetime.now())
    return signed_notification(trade, "mockpay-sandbox", key, **changes)
