"""Item 11: a trade must not be payable after its order closes.

Checkout sends Alipay ``time_expire`` (Beijing time, ``yyyy-MM-dd HH:mm:ss``) at the order's
own expiry, its create_time + ORDER_PAY_TIMEOUT_SECONDS, so that Alipay refuses a payment after the
shop closes the order; the offline gateway enforces it as Alipay does, and so does mockpay's
sandbox. The requests are the real ones: signed by python-alipay-sdk, verified by the gateway.
"""

import json
from datetime import datetime, timedelta

from sqlalchemy import update
from support.alipay import form_action, form_fields
from support.forms import logged_in
from support.shop import csrf_token, make_app, member_orders, wait_for

from gmall_payment.adapters.sql.models import Order, db
from gmall_payment.plugins.alipay import gateway as gateway_module
from gmall_payment.plugins.alipay.client import BEIJING

TIMEOUT = 1800
JSON = {"Accept": "application/json"}


def placed(app, order_sn, at: datetime) -> datetime:
    with app.app_context():
        db.session.execute(update(Order).where(Order.order_sn == order_sn).values(create_time=at))
        db.session.commit()
    return at


def check_out(browser, order_sn, provider):
    pay_page = browser.get("/pay.html", query_string={"orderToken": order_sn})
    return browser.post(
        f"/pay/{provider}", data={"orderToken": order_sn, "csrf_token": csrf_token(pay_page.text)}
    )


def beijing(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def alipay_cashier(browser, order_sn):
    """Check out with 支付宝: the auto-submitting form, signed by the SDK, posted to the gateway."""
    form = check_out(browser, order_sn, "alipay").text
    return form_fields(form), browser.post(form_action(form), data=form_fields(form))


def test_checkout_sends_alipay_the_orders_expiry_as_time_expire(app):
    order_sn = member_orders(app)[0]
    created = placed(app, order_sn, datetime.now().replace(microsecond=0) - timedelta(minutes=10))

    fields, cashier = alipay_cashier(logged_in(app), order_sn)

    assert json.loads(fields["biz_content"])["time_expire"] == beijing(created + timedelta(seconds=TIMEOUT))
    assert cashier.status_code == 200 and "支付宝 收银台" in cashier.text  # the signature held


def test_the_gateway_refuses_a_trade_past_its_time_expire(app):
    order_sn = member_orders(app)[0]
    placed(app, order_sn, datetime.now() - timedelta(seconds=TIMEOUT + 60))  # expired, not yet swept

    _, refused = alipay_cashier(logged_in(app), order_sn)

    assert refused.status_code == 400 and "ACQ.TRADE_HAS_CLOSE" in refused.text and "超时" in refused.text
    assert app.wsgi_app.mounts["/alipay-sandbox"].ledger.get(order_sn).trade_status == "TRADE_CLOSED"


def test_the_gateway_cashier_refuses_to_pay_once_time_expire_passed(app, monkeypatch):
    order_sn = member_orders(app)[0]
    browser = logged_in(app)
    _, cashier = alipay_cashier(browser, order_sn)
    assert cashier.status_code == 200
    later = gateway_module.beijing_now() + timedelta(seconds=TIMEOUT + 60)
    monkeypatch.setattr(gateway_module, "beijing_now", lambda: later)  # the shopper paid half an hour later

    refused = browser.post(form_action(cashier.text), data={**form_fields(cashier.text), "action": "pay"})

    assert refused.status_code == 409 and "订单已超时" in refused.text
    gateway = app.wsgi_app.mounts["/alipay-sandbox"]
    assert (
        gateway.ledger.get(order_sn).trade_status == "TRADE_CLOSED" and not gateway.ledger.get(order_sn).paid
    )
    assert gateway.notifier.join(5) and not any(
        attempt for attempt in gateway.notifier.attempts if "TRADE_SUCCESS" in attempt.body
    )


def test_mockpay_refuses_a_trade_past_the_orders_expiry(app):
    order_sn, later_sn = member_orders(app)[:2]
    placed(app, order_sn, datetime.now() - timedelta(seconds=TIMEOUT + 60))
    browser = logged_in(app)

    refused = browser.get(check_out(browser, order_sn, "mockpay").headers["Location"])
    paid_late = browser.post("/mockpay/cashier", data={"out_trade_no": order_sn, "action": "pay"})

    assert refused.status_code == paid_late.status_code == 409 and "closed" in refused.text
    sandbox = app.wsgi_app.mounts["/mockpay"].site  # the cashier itself, beneath its security headers
    assert sandbox.ledger.trade(order_sn).trade_status == "TRADE_CLOSED"
    cashier = browser.get(check_out(browser, later_sn, "mockpay").headers["Location"])
    assert cashier.status_code == 200
    assert sandbox.ledger.trade(later_sn).time_expire is not None
    sandbox.clock = lambda: sandbox.ledger.trade(later_sn).time_expire + timedelta(seconds=1)
    assert (
        browser.post("/mockpay/cashier", data={"out_trade_no": later_sn, "action": "pay"}).status_code == 409
    )
    assert sandbox.ledger.trade(later_sn).trade_status == "TRADE_CLOSED"
    assert sandbox.notifier.join(5) and sandbox.notifier.attempts == []


def test_a_flash_sale_order_expires_at_its_own_earlier_time(tmp_path):
    """A flash-sale order closes SECKILL_PAY_WITHIN_SECONDS after its click, before the shop's
    ORDER_PAY_TIMEOUT_SECONDS: its time_expire is that earlier time."""
    app = make_app(tmp_path, SECKILL_PAY_WITHIN_SECONDS=600, SECKILL_TICK_SECONDS=0.05)
    try:
        browser = logged_in(app)
        sale = wait_for(
            lambda: next(
                (
                    s
                    for s in browser.get("/seckill", headers=JSON).json["sales"]
                    if s["units_left"] is not None
                ),
                None,
            )
        )
        clicked = datetime.now()
        order_sn = browser.get(f"/seckill/{sale['sku_id']}", headers=JSON).json["order_sn"]
        wait_for(lambda: browser.get(f"/seckill/orders/{order_sn}").json["state"] == "created")

        fields, cashier = alipay_cashier(browser, order_sn)

        time_expire = datetime.strptime(json.loads(fields["biz_content"])["time_expire"], "%Y-%m-%d %H:%M:%S")
        expected = (clicked + timedelta(seconds=600)).astimezone(BEIJING).replace(tzinfo=None)
        assert abs((time_expire - expected).total_seconds()) <= 2  # not the order timeout's 1800 s
        assert cashier.status_code == 200
    finally:
        app.extensions["gmall"].bus.close()
