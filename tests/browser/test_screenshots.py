"""The README's screenshots, made from the real pages so they stay true: with
GMALL_WRITE_SCREENSHOTS=1 they are written to docs/screenshots/ (commit them); otherwise to the
browser artifacts folder. They are looked at by people, not compared."""

import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from support.browser import log_in, shoot
from support.shop import browser_login, member_orders, pay_on_cashier, wait_until_fulfilled

from gmall_payment.core.seckill import Sale


@pytest.fixture
def window(open_window):
    return open_window(viewport={"width": 1024, "height": 640})


def test_the_pay_page(live_shop, window):
    app, base_url = live_shop
    log_in(window, base_url)
    window.goto(f"{base_url}/pay.html?orderToken={member_orders(app)[1]}")
    shoot(window, "pay")


def test_the_flash_sale(live_shop, window):
    app, base_url = live_shop
    now = datetime.now()
    with app.app_context():
        app.extensions["gmall"].seckill.create_sale(
            Sale(
                1003,
                "谷粒定制 帆布袋",
                Decimal("9.90"),
                50,
                now + timedelta(minutes=42),
                now + timedelta(hours=2),
            )
        )
    log_in(window, base_url)
    window.goto(f"{base_url}/seckill")
    window.locator("#sale-1003 .countdown").filter(has_text="0:41:").wait_for()
    shoot(window, "seckill")


def test_the_operator_page(live_shop, window):
    app, base_url = live_shop
    shopper = browser_login(base_url)
    for order_sn in member_orders(app)[:2]:
        pay_on_cashier(shopper, base_url, order_sn)
        wait_until_fulfilled(shopper, base_url, order_sn)
    window.goto(f"{base_url}/operator/payments")
    window.fill("input[name=token]", app.config["OPERATOR_TOKEN"])
    window.click("button[type=submit]")
    window.wait_for_url(re.compile(r".*/operator/payments.*"))
    shoot(window, "operator")
