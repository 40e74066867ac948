"""Races over real HTTP: the shop, mockpay's sandbox and the offline Alipay gateway as servers.

Money that arrives for an order already closed, or already paid through another provider,
goes back through the provider that took it, by itself, and operators can see it.
"""

import pytest
from sqlalchemy import select, update
from support.alipay import pay_on_cashier as pay_on_alipay
from support.alipay import start_on_cashier
from support.shop import browser_login, notify_log, open_order, pay_on_cashier, served_shop, wait_for

from gmall_payment.adapters.sql.models import Order, PaymentInfo, db


@pytest.fixture
def live(tmp_path):
    with served_shop(tmp_path, ALIPAY_SANDBOX_NOTIFY_SPEEDUP=24000) as shop:
        yield shop


def payments_of(app, order_sn):
    with app.app_context():
        rows = db.session.scalars(
            select(PaymentInfo).where(PaymentInfo.order_sn == order_sn).order_by(PaymentInfo.id)
        ).all()
        db.session.expunge_all()
        return {p.payment_type: p for p in rows}


def order_status(app, order_sn):
    with app.app_context():
        return db.session.scalar(select(Order.status).where(Order.order_sn == order_sn))


def test_paid_after_the_order_closed_is_refunded_by_itself(live):
    app, base_url = live
    order = open_order(app)
    sn = order["order_sn"]
    browser = browser_login(base_url)
    pay_page = browser.get(f"{base_url}/pay.html", params={"orderToken": sn})  # the shopper is on the way...
    assert pay_page.status_code == 200
    _, cashier, _ = pay_on_cashier(browser, base_url, sn, scenario="late")  # ...and pays as the order expires
    with app.app_context():
        db.session.execute(update(Order).where(Order.order_sn == sn).values(status=4))
        db.session.commit()

    refunded = wait_for(
        timeout=15, check=lambda: payments_of(app, sn)["mockpay"].payment_status == 4 and payments_of(app, sn)
    )

    payment = refunded["mockpay"]
    assert (payment.refund_reason, payment.refunded, payment.flag) == (
        "paid_after_close",
        payment.total_amount,
        None,
    )
    assert order_status(app, sn) == 4  # the order stays closed
    sandbox = app.wsgi_app.mounts["/mockpay"]
    assert sandbox.ledger.trade(sn).refunded == payment.total_amount  # the money went back, once
    assert sandbox.ledger.trade(sn).trade_status == "TRADE_CLOSED"
    assert [e.outcome for e in notify_log(app)] == ["paid_after_close"]
    app.extensions["gmall"].bus.join()
    view = browser.get(f"{base_url}/api/orders/{sn}/trace").json()
    assert ("auto_refund", "done") in [(s["step"], s["state"]) for s in view["fulfilment"]]
    assert view["stuck"] is False
    result_page = browser.get(f"{base_url}/pay/return/mockpay", params={"out_trade_no": sn}).text
    assert "退款" in result_page and "paid_after_close" not in result_page
    operators = app.test_client()
    listed = operators.get(
        "/api/operator/payments?attention=attention",
        headers={"Authorization": f"Bearer {app.config['OPERATOR_TOKEN']}"},
    ).json["payments"]
    assert [(p["id"], p["refund_reason"], p["status"], p["owed_back"]) for p in listed] == [
        (payment.id, "paid_after_close", "refunded", False)
    ]


def test_two_providers_both_paid_one_is_refunded(live):
    app, base_url = live
    order = open_order(app)
    sn = order["order_sn"]
    browser = browser_login(base_url)
    _, alipay_cashier = start_on_cashier(app, base_url, sn, browser)  # 支付宝's cashier open in one tab...
    pay_on_cashier(browser, base_url, sn)  # ...the shopper pays with mockpay in another...
    wait_for(timeout=15, check=lambda: order_status(app, sn) == 1)
    pay_on_alipay(alipay_cashier, session=browser)  # ...then on the 支付宝 cashier as well

    both = wait_for(
        timeout=15, check=lambda: (lambda p: p["alipay"].payment_status == 4 and p)(payments_of(app, sn))
    )

    mockpay, alipay = both["mockpay"], both["alipay"]
    assert (mockpay.payment_status, mockpay.refund_reason) == (1, None)
    assert (alipay.refund_reason, alipay.refunded, alipay.flag) == ("paid_twice", alipay.total_amount, None)
    gateway = app.wsgi_app.mounts["/alipay-sandbox"]
    assert (
        gateway.ledger.get(sn).refunded == alipay.total_amount
        and gateway.ledger.get(sn).trade_status == "TRADE_CLOSED"
    )
    assert app.wsgi_app.mounts["/mockpay"].ledger.trade(sn).refunded == 0
    assert order_status(app, sn) == 1
    # Alipay closes a fully refunded trade and says so: the echo of our own refund, accepted as such
    # ("duplicate" once the refund's answer settled it, "refunded" if the notify came first).
    log = wait_for(timeout=15, check=lambda: (log := notify_log(app)) and len(log) == 3 and log)
    assert [(e.provider, e.outcome) for e in log[:2]] == [("mockpay", "paid"), ("alipay", "paid_twice")]
    echo = log[2]
    assert (echo.provider, echo.accepted, echo.outcome in ("duplicate", "refunded")) == ("alipay", True, True)
    assert "trade_status=TRADE_CLOSED" in echo.raw and "out_biz_no=auto-" in echo.raw
    assert payments_of(app, sn)["alipay"].flag is None
    app.extensions["gmall"].bus.join()
    view = browser.get(f"{base_url}/api/orders/{sn}").json()
    assert view["points_awarded"] is True and view["status"] == "awaiting_shipment"
