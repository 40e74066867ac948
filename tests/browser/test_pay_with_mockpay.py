"""A shopper pays an order with mockpay in a real browser: pay.html, the cashier, the return
page, with JavaScript on or off; a failed, cancelled or unheard payment says what happened and
offers to pay again; a paid order is never offered to be paid again, not even from the
browser's history."""

import re

import pytest
import requests
from support.browser import log_in, open_cashier
from support.shop import fulfilled, member_orders, wait_for


def pay_with(page, base_url, order_sn, scenario):
    """On the cashier of ``order_sn``, pay as ``scenario`` says; back on the shop's return page."""
    open_cashier(page, base_url, order_sn)  # pay.html's buttons are forms
    page.check(f"input[name=scenario][value={scenario}]")
    page.click("button[value=pay]")
    page.wait_for_url(re.compile(r".*/pay/return/mockpay.*"))


@pytest.mark.parametrize("scenario", ["normal", "duplicate", "late"])
def test_a_shopper_pays_with_mockpay_and_sees_the_order_paid(live_shop, page, scenario):
    app, base_url = live_shop
    order_sn = member_orders(app)[0]
    log_in(page, base_url)
    pay_with(page, base_url, order_sn, scenario)
    verdict = page.locator("#verdict")
    verdict.filter(has_text="支付成功").wait_for(
        timeout=15_000
    )  # the return page polls until the notify is in
    assert verdict.get_attribute("data-status") == "awaiting_shipment"
    assert "待发货" in verdict.inner_text()
    assert page.locator("#pay-again").count() == 0


@pytest.mark.settings(MOCKPAY_LATE_SECONDS=2)  # the shopper is back well before the verdict
def test_the_waiting_page_says_it_updates_itself_and_does(live_shop, page):
    app, base_url = live_shop
    order_sn = member_orders(app)[0]
    log_in(page, base_url)
    pay_with(page, base_url, order_sn, "late")
    assert "此页会自动更新" in page.locator("#waiting").inner_text()
    page.locator("#verdict").filter(has_text="支付成功").wait_for(timeout=15_000)


@pytest.mark.settings(MOCKPAY_LATE_SECONDS=2)  # the shopper is back well before the verdict
def test_a_shopper_pays_with_mockpay_with_javascript_off(live_shop, open_window):
    app, base_url = live_shop
    order_sn = member_orders(app)[0]
    page = open_window(java_script_enabled=False)
    log_in(page, base_url)
    pay_with(page, base_url, order_sn, "late")
    waiting = page.locator("#waiting").inner_text()
    assert "等待支付结果" in waiting and "自动更新" not in waiting  # it cannot update by itself
    look_again = page.get_by_role("link", name="刷新查看结果")
    assert look_again.is_visible()

    with app.app_context():
        wait_for(lambda: fulfilled(order_sn))
    look_again.click()
    verdict = page.locator("#verdict")
    verdict.filter(has_text="支付成功").wait_for()
    assert verdict.get_attribute("data-status") == "awaiting_shipment"
    assert "待发货" in verdict.inner_text()


@pytest.mark.parametrize(
    ("action", "verdict", "words"),
    [("fail", "#verdict-failed", "付款未成功"), ("cancel", "#verdict-cancelled", "您已取消付款")],
)
def test_a_failed_or_cancelled_payment_says_so_and_offers_to_pay_again(
    live_shop, page, action, verdict, words
):
    app, base_url = live_shop
    order_sn = member_orders(app)[0]
    log_in(page, base_url)
    open_cashier(page, base_url, order_sn)
    page.click(f"button[value={action}]")
    page.wait_for_url(re.compile(r".*/pay/return/mockpay.*"))
    assert words in page.locator(verdict).inner_text()
    assert page.locator("#waiting").count() == 0  # nothing to wait for: the shopper stopped
    page.click("#pay-again")
    page.wait_for_url(re.compile(r".*/pay\.html\?orderToken=" + order_sn))
    open_cashier(page, base_url, order_sn, on_pay_page=True)  # the same trade, payable again
    page.click("button[value=pay]")
    page.locator("#verdict").filter(has_text="支付成功").wait_for(timeout=15_000)


def test_the_return_parameters_never_make_an_order_paid(live_shop, page):
    app, base_url = live_shop
    order_sn = member_orders(app)[0]
    log_in(page, base_url)
    page.clock.install()
    page.goto(f"{base_url}/pay/return/mockpay?out_trade_no={order_sn}&trade_status=TRADE_SUCCESS&paid=1")
    assert "等待支付结果" in page.locator("#waiting").inner_text()
    assert page.locator("#pay-again").is_hidden()


def test_when_no_verdict_comes_the_return_page_stops_waiting_and_offers_to_pay_again(live_shop, page):
    app, base_url = live_shop
    order_sn = member_orders(app)[0]
    log_in(page, base_url)
    page.clock.install()  # the page's timers on a clock the test moves
    pay_with(page, base_url, order_sn, "lost")  # paid, but the shop hears nothing
    assert page.locator("#waiting").is_visible() and page.locator("#gave-up").is_hidden()
    page.clock.run_for(60_000)
    assert page.locator("#waiting").is_visible()  # still asking after a minute
    page.clock.run_for(65_000)
    page.locator("#gave-up").wait_for()
    assert (
        page.locator("#waiting").is_hidden() and "还没有收到支付结果" in page.locator("#gave-up").inner_text()
    )
    assert page.locator("#pay-again").is_visible()


def test_a_paid_order_is_not_offered_to_be_paid_again_even_from_the_history(live_shop, page):
    app, base_url = live_shop
    order_sn = member_orders(app)[0]
    log_in(page, base_url)
    open_cashier(page, base_url, order_sn)
    page.click("button[value=pay]")
    page.locator("#verdict").filter(has_text="支付成功").wait_for(timeout=15_000)

    while "/pay.html" not in page.url:  # the back button, to the page that offered the buttons
        page.go_back()
    assert page.locator("#providers").count() == 0
    assert "此订单已支付" in page.locator("#pay-verdict").inner_text()
    page.click("#order-link")
    page.wait_for_url(re.compile(rf".*/orders#order-{order_sn}$"))
    assert page.locator(f"#order-{order_sn} .order-status").inner_text() == "待发货"

    session = requests.Session()  # every pay step says: never store me
    session.cookies.update({c["name"]: c["value"] for c in page.context.cookies()})
    for path in (f"/pay.html?orderToken={order_sn}", f"/pay/return/mockpay?out_trade_no={order_sn}"):
        assert session.get(base_url + path).headers["Cache-Control"] == "no-store", path


def test_paying_a_paid_order_again_from_the_cashiers_back_button_is_the_shops_page(live_shop, page):
    app, base_url = live_shop
    order_sn = member_orders(app)[0]
    log_in(page, base_url)
    stale = page.context.new_page()  # pay.html left open in another tab
    stale.goto(f"{base_url}/pay.html?orderToken={order_sn}")
    open_cashier(page, base_url, order_sn)
    cashier = page.url
    page.click("button[value=pay]")
    page.locator("#verdict").filter(has_text="支付成功").wait_for(timeout=15_000)

    page.goto(cashier)  # the cashier again: the trade is paid
    assert (
        "无法付款" in page.locator("h1").inner_text()
        and "already paid" in page.locator("#message").inner_text()
    )
    page.click("text=回到我的订单")
    page.wait_for_url(re.compile(r".*/orders$"))

    stale.get_by_role("button", name=re.compile("mockpay")).click()  # the old tab's button
    stale.locator("#error").wait_for()
    assert stale.locator("#error").get_attribute("data-code") == "409"
    assert "此订单无法支付" in stale.locator("#error-message").inner_text()
    assert stale.locator("a", has_text=f"查看订单 {order_sn}").count() == 1
