"""The shop's Content-Security-Policy in a real browser: what the shop's own pages and scripts
do still works under it (the auto-submitting Alipay form, the sale page's countdown, the return
page's polling), and the browser reports no violation."""

import os
import re
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from support.browser import log_in
from support.shop import member_orders

from gmall_payment.core.seckill import Sale

#: Collects what the browser refuses, before any page script runs (Playwright's init scripts
#: are not subject to the page's policy).
VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
    event => window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`));
"""
SCREENSHOTS = Path(os.environ.get("BROWSER_ARTIFACTS", ".artifacts/browser"))


@pytest.fixture
def watched(page):
    """The page, watched for policy violations: none may happen during the test."""
    page.add_init_script(VIOLATIONS)
    yield page
    assert page.evaluate("window.__violations") == []
    assert [m for m in page.console_messages if "Content Security Policy" in m or "Refused to" in m] == []


def test_the_alipay_form_submits_itself_to_the_offline_gateway_under_the_policy(live_shop, watched):
    app, base_url = live_shop
    order_sn = member_orders(app)[0]
    log_in(watched, base_url)
    watched.goto(f"{base_url}/pay.html?orderToken={order_sn}")
    with watched.expect_navigation(url=re.compile(r".*/alipay-sandbox/gateway\.do.*")) as navigation:
        watched.get_by_role(
            "button", name="支付宝"
        ).click()  # pay.html -> the form page -> its script posts it
    assert navigation.value.headers["content-security-policy"].startswith("default-src 'self'")
    watched.locator(f"text={order_sn}").first.wait_for()  # the offline gateway's cashier, for this order
    watched.click("button[value=pay]")
    watched.wait_for_url(re.compile(r".*/pay/(ok|return/alipay).*"))
    watched.locator("#verdict").filter(has_text="支付成功").wait_for(timeout=15_000)  # the polling script ran
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    watched.screenshot(path=SCREENSHOTS / "csp-alipay-paid.png", full_page=True)


def test_the_sale_pages_countdown_runs_under_the_policy(live_shop, watched):
    app, base_url = live_shop
    now = datetime.now()
    with app.app_context():
        app.extensions["gmall"].seckill.create_sale(
            Sale(
                1003,
                "谷粒定制 帆布袋 秒杀",
                Decimal("9.90"),
                10,
                now + timedelta(seconds=4),
                now + timedelta(hours=1),
            )
        )
    log_in(watched, base_url)
    watched.goto(f"{base_url}/seckill")
    row = watched.locator("#sale-1003")
    countdown = row.locator(".countdown")
    countdown.filter(has_text=re.compile(r"距开始 0:00:0[1-4]")).wait_for()  # the script writes the time left
    assert row.locator(".buy").is_hidden()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    watched.screenshot(path=SCREENSHOTS / "csp-seckill-countdown.png", full_page=True)
    row.locator(".sale-state").filter(has_text="进行中").wait_for(timeout=10_000)  # ... down to the start
    row.locator(".buy").click()  # the click's fetch, its JSON answer written on the page
    row.locator(".result").filter(has_text="秒杀成功").wait_for(timeout=10_000)
