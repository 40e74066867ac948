"""\"My orders\" in a real browser: statuses, times, stock and points as a shopper reads them
(no raw names), a fully refunded order shown refunded with its points taken back, and a
layout that fits a 390 px phone."""

import re

import requests
from sqlalchemy import select
from support.browser import log_in, open_cashier
from support.shop import fulfilled, member_orders, order_now, wait_for

from gmall_payment.adapters.sql.models import PaymentInfo, db

#: What a shopper must never read: enum names, column names, ISO times.
RAW = re.compile(
    r"awaiting_|_shipment|\blocked\b|deducted|released|integration|stock_locked|\bsales\b|"
    r"\d{4}-\d\d-\d\dT\d\d:|mark_order_paid|award_points|\bdone\b|\bunpaid\b|\bpaid\b"
)


def pay(page, base_url, order_sn):
    open_cashier(page, base_url, order_sn)
    page.click("button[value=pay]")
    page.locator("#verdict").filter(has_text="支付成功").wait_for(timeout=15_000)


def test_my_orders_reads_as_a_shopper_reads_it(live_shop, page):
    app, base_url = live_shop
    paid, waiting = member_orders(app)[:2]
    log_in(page, base_url)
    pay(page, base_url, paid)
    with app.app_context():
        wait_for(lambda: fulfilled(paid))
    page.goto(f"{base_url}/orders")
    page.locator("#stock summary").click()  # the demo's stock table too

    text = page.locator("main").inner_text()
    assert not RAW.search(text), RAW.search(text)
    card = page.locator(f"#order-{paid}")
    assert card.locator(".order-status").inner_text() == "待发货"
    assert (
        "已支付" in card.locator(".payments").inner_text() and "已扣减" in card.locator(".locks").inner_text()
    )
    assert re.fullmatch(r"\+\d+ 积分 · \+\d+ 成长值", card.locator(".points").inner_text())
    assert re.search(
        r"下单时间 \d{4}-\d\d-\d\d \d\d:\d\d$", card.locator(".order-head").inner_text().split("\n")[1]
    )
    assert page.locator(f"#order-{waiting} .order-status").inner_text() == "待付款"
    assert page.locator(f"#order-{waiting} .pay-button").inner_text() == "去支付"
    card.locator("summary").click()
    assert card.locator(".step").all_inner_texts()[0].startswith("确认付款 · 完成")
    assert "/api/" not in page.content()  # no link to raw JSON


def test_a_fully_refunded_order_shows_refunded_with_its_points_taken_back(live_shop, page):
    app, base_url = live_shop
    order_sn = member_orders(app)[0]
    log_in(page, base_url)
    pay(page, base_url, order_sn)
    with app.app_context():
        wait_for(lambda: fulfilled(order_sn))
        payment = db.session.scalar(select(PaymentInfo).where(PaymentInfo.order_sn == order_sn))
        payment_id, amount = payment.id, f"{payment.total_amount:.2f}"
        db.session.remove()
    refunded = requests.post(
        f"{base_url}/api/operator/payments/{payment_id}/refunds",  # an operator refunds it all
        json={"amount": amount, "out_request_no": "browser-test-refund"},
        headers={"Authorization": f"Bearer {app.config['OPERATOR_TOKEN']}"},
        timeout=30,
    )
    assert refunded.status_code == 200, refunded.text
    app.extensions["gmall"].bus.join()
    with app.app_context():
        wait_for(lambda: order_now(order_sn)["points_revoked"])
    page.goto(f"{base_url}/orders")
    card = page.locator(f"#order-{order_sn}")
    status = card.locator(".order-status")
    assert status.inner_text() == "已退款" and "ok" not in status.get_attribute("class")
    assert "已退款" in card.locator(".payments").inner_text()
    assert card.locator(".points del").count() == 1 and "已收回" in card.locator(".points").inner_text()
    page.goto(f"{base_url}/pay.html?orderToken={order_sn}")
    assert page.locator("#providers").count() == 0 and page.locator("h1").inner_text() == "订单已退款"


def test_the_shoppers_pages_fit_a_390_px_phone(live_shop, open_window):
    app, base_url = live_shop
    page = open_window(viewport={"width": 390, "height": 844}, is_mobile=True, device_scale_factor=2)
    paid, waiting = member_orders(app)[:2]
    page.goto(f"{base_url}/login")
    assert_fits(page, "login")
    log_in(page, base_url)
    pay(page, base_url, paid)
    assert_fits(page, "the return page")
    page.goto(f"{base_url}/pay.html?orderToken={waiting}")
    assert_fits(page, "pay.html")
    page.goto(f"{base_url}/orders")
    page.locator("#stock summary").click()
    assert_fits(page, "my orders")
    button = page.locator(f"#order-{waiting} .pay-button")
    box, price = button.bounding_box(), page.locator(f"#order-{waiting} .amount").bounding_box()
    assert box["x"] + box["width"] <= 390 and price["x"] + price["width"] <= 390
    assert lines(button) == 1 and button.evaluate("b => b.scrollWidth <= b.clientWidth")  # its text inside it
    for header in page.locator("#stock th").all():  # headers on one line each
        assert lines(header) == 1, header.inner_text()
    page.goto(f"{base_url}/seckill")
    assert_fits(page, "the flash sale")
    page.goto(f"{base_url}/no-such-page")
    assert_fits(page, "an error page")
    open_cashier(page, base_url, waiting)
    assert_fits(page, "mockpay's cashier")


def assert_fits(page, where):
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{where} is {width[0]} px wide in a {width[1]} px window"


def lines(element) -> int:
    """How many lines the element's text takes."""
    return element.evaluate(
        "e => { const r = document.createRange(); r.selectNodeContents(e); "
        "return new Set([...r.getClientRects()].map(rect => Math.round(rect.top))).size; }"
    )
