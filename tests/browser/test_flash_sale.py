"""The flash sale in a real browser: a sale opening a few seconds after the page loads counts
down on the server's clock (whatever the browser's own says), shows its buy button only once the
server has opened it, and ends in a paid order; two members race for the last unit."""

import re
from datetime import datetime, timedelta
from decimal import Decimal

from support.browser import log_in
from support.shop import member_orders

from gmall_payment.core.seckill import Sale
from gmall_payment.webapp.seckill import NOT_HELD

SKU = 1003
#: The browser's own clock an hour fast: the page must not believe it.
FAST_CLOCK = "const real = Date.now; Date.now = () => real() + 3600 * 1000;"


def a_sale(app, units=10, opens_in=3.0):
    now = datetime.now()
    with app.app_context():
        app.extensions["gmall"].seckill.create_sale(
            Sale(
                SKU,
                "谷粒定制 帆布袋",
                Decimal("9.90"),
                units,
                now + timedelta(seconds=opens_in),
                now + timedelta(hours=1),
            )
        )


def buy_as_soon_as_shown(page):
    """Click the buy button the moment it appears, as a fast shopper does; its answer."""
    row = page.locator(f"#sale-{SKU}")
    row.locator(".buy").wait_for(state="visible", timeout=10_000)
    row.locator(".buy").click()
    return row.locator(".result").filter(has_text=re.compile(".+")).inner_text(timeout=10_000)


def test_a_sale_opens_on_the_servers_clock_and_ends_in_a_paid_order(live_shop, page):
    app, base_url = live_shop
    page.add_init_script(FAST_CLOCK)
    log_in(page, base_url)
    a_sale(app)
    page.goto(f"{base_url}/seckill")
    row = page.locator(f"#sale-{SKU}")
    row.locator(".countdown").filter(has_text=re.compile(r"^距开始 0:00:0[1-3]$")).wait_for()
    assert row.locator(".sale-state").inner_text() == "即将开始" and row.locator(".buy").is_hidden()
    assert row.locator("h2").inner_text() == "谷粒定制 帆布袋"  # the price is beside it, once
    assert row.locator(".amount").inner_text() == "¥9.90"

    answer = buy_as_soon_as_shown(page)
    assert answer.startswith("秒杀成功,订单号:"), answer  # never 秒杀尚未开始: shown only once open
    assert row.locator(".sale-state").inner_text() == "进行中"
    assert row.locator(".countdown").inner_text().startswith("距结束 ")
    pay = row.locator(".pay-link")
    result, button = row.locator(".result").bounding_box(), pay.bounding_box()
    assert button["y"] >= result["y"] + result["height"]  # below the answer, not over it

    pay.click()
    page.wait_for_url(re.compile(r".*/pay\.html\?orderToken=\d+$"))
    assert page.locator("#pay-amount").inner_text() == "¥9.90"
    page.get_by_role("button", name=re.compile("mockpay")).click()
    page.click("button[value=pay]")
    page.locator("#verdict").filter(has_text="支付成功").wait_for(timeout=15_000)


def test_two_members_race_for_the_last_unit(live_shop, open_window):
    app, base_url = live_shop
    pages = []
    for username, password in (("demo", "demo123"), ("alice", "alice123")):
        pages.append(open_window(viewport={"width": 1024, "height": 800}))
        log_in(pages[-1], base_url, username, password)
    a_sale(app, units=1)
    for page in pages:
        page.goto(f"{base_url}/seckill")
    for page in pages:
        page.locator(f"#sale-{SKU} .buy").wait_for(state="visible", timeout=10_000)
    for page in pages:  # both click at once
        page.locator(f"#sale-{SKU} .buy").click(no_wait_after=True)
    answers = [
        page.locator(f"#sale-{SKU} .result").filter(has_text=re.compile(".+")).inner_text() for page in pages
    ]
    assert sorted(answer.startswith("秒杀成功,订单号:") for answer in answers) == [False, True], answers
    assert "秒杀结束!" in answers, answers  # the other one: sold out
    winner = next(page for page in pages if page.locator(f"#sale-{SKU} .pay-link").count())
    loser = next(page for page in pages if page is not winner)
    assert loser.locator(f"#sale-{SKU} .pay-link").count() == 0
    loser.locator(f"#sale-{SKU} .units").filter(has_text=re.compile("^0$")).wait_for(timeout=5_000)


def test_the_sale_page_works_without_javascript_once_open(live_shop, open_window):
    app, base_url = live_shop
    page = open_window(java_script_enabled=False)
    log_in(page, base_url)
    assert member_orders(app)  # demo's orders are there
    page.goto(f"{base_url}/seckill")
    page.locator("#sale-1004 .buy").click()  # the demo's open sale: the link is the click
    page.locator("#outcome").wait_for()
    assert page.locator("#outcome").inner_text().startswith("秒杀成功,订单号:")
    page.get_by_role("link", name="去支付").click()
    page.wait_for_url(re.compile(r".*/(pay\.html|seckill/pay).*"))


def test_a_pay_link_with_a_number_not_the_members_is_told_at_once(live_shop, page):
    app, base_url = live_shop
    log_in(page, base_url)
    for number in ("20241111200000000000123456", member_orders(app, "alice")[0]):  # made up; another member's
        response = page.goto(f"{base_url}/seckill/pay?orderSn={number}", timeout=2_000)  # never the 5 s wait
        assert response.status == 404
        assert page.locator("#error-message").inner_text() == NOT_HELD.format(order_sn=number)
