"""A shopper pays with mockpay over real HTTP; the notify arrives; the order is fulfilled once."""

import time

import pytest
from sqlalchemy import select
from support.races import race
from support.shop import (
    browser_login,
    csrf_token,
    open_order,
    pay_on_cashier,
    shop_state,
    wait_until_fulfilled,
)

from gmall_payment.adapters.sql.models import PaymentInfo, db
from gmall_payment.webapp.formatting import money


@pytest.mark.parametrize("scenario", ["normal", "duplicate", "late"])
def test_pay_with_mockpay_end_to_end(live, scenario):
    app, base_url = live
    before = open_order(app)
    browser = browser_login(base_url)

    pay_page, cashier, returned = pay_on_cashier(browser, base_url, before["order_sn"], scenario)
    assert before["order_sn"] in pay_page.text and money(before["amount"]) in pay_page.text  # ¥1,999.00
    assert "模拟支付 (mockpay)" in pay_page.text
    assert f"¥{before['amount']}" in cashier.text  # the order's own amount, never a constant

    view = wait_until_fulfilled(browser, base_url, before["order_sn"])
    app.extensions["gmall"].bus.join()
    time.sleep(0.3 if scenario != "late" else 0.6)  # let any second copy of the notify land
    app.extensions["gmall"].bus.join()

    assert view["status"] == "awaiting_shipment"
    [payment] = view["payments"]
    assert payment["provider"] == "mockpay" and payment["status"] == "paid" and payment["trade_no"]
    (integration, growth), (stock, locked, sales) = shop_state(app, before)
    n = before["quantity"]
    assert (integration, growth) == (
        before["member"][0] + before["integration"],
        before["member"][1] + before["growth"],
    )
    assert (stock, locked, sales) == (before["sku"][0] - n, before["sku"][1] - n, before["sku"][2] + n)
    orders_page = browser.get(f"{base_url}/orders").text
    assert f'<strong id="integration">{integration}</strong>' in orders_page


def test_return_page_reads_the_database_not_the_redirect(live):
    app, base_url = live
    before = open_order(app)
    browser = browser_login(base_url)
    forged_return = browser.get(
        f"{base_url}/pay/return/mockpay",
        params={
            "out_trade_no": before["order_sn"],
            "trade_status": "TRADE_SUCCESS",
            "total_amount": before["amount"],
        },
    )
    assert forged_return.status_code == 200
    assert 'data-status="awaiting_payment"' in forged_return.text


def test_concurrent_double_start_creates_one_payment(live):
    app, base_url = live
    before = open_order(app)
    browsers = [browser_login(base_url) for _ in range(6)]
    pages = [b.get(f"{base_url}/pay.html", params={"orderToken": before["order_sn"]}) for b in browsers]

    def click(i):
        return browsers[i].post(
            f"{base_url}/pay/mockpay",
            data={"orderToken": before["order_sn"], "csrf_token": csrf_token(pages[i].text)},
            allow_redirects=False,
        )

    answers = race(len(browsers), click)
    assert [a.status_code for a in answers] == [303] * len(browsers)
    with app.app_context():
        rows = db.session.scalars(select(PaymentInfo).where(PaymentInfo.order_sn == before["order_sn"])).all()
    assert len(rows) == 1 and f"{rows[0].total_amount:.2f}" == before["amount"]


def test_other_members_orders_are_not_found(live):
    app, base_url = live
    theirs = open_order(app, "alice")
    browser = browser_login(base_url)
    assert browser.get(f"{base_url}/pay.html", params={"orderToken": theirs["order_sn"]}).status_code == 404
    assert browser.get(f"{base_url}/api/orders/{theirs['order_sn']}").status_code == 404
