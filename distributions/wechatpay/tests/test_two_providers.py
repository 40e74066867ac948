"""An order paid with both of China's wallets, over real HTTP with both offline gateways served
by the shop: the first payment pays the order, the second goes back through its own provider by
itself, and the order is fulfilled once (tests/webapp/test_races_end_to_end.py does the same
with mockpay and 支付宝)."""

from decimal import Decimal

import pytest
from gmall_payment_wechatpay import apiv3
from support.alipay import SPEEDUP as ALIPAY_SPEEDUP
from support.alipay import pay_on_cashier as pay_on_alipay
from support.alipay import start_on_cashier
from support.shop import notify_log, open_order, served_shop, shop_state, wait_for, wait_until_fulfilled
from wechat_support import SETTINGS, fulfilled_once, gateway_of, payments_of, qr_page, scan_and_pay

OTHER = {"alipay": "wechatpay", "wechatpay": "alipay"}


@pytest.fixture
def both(tmp_path):
    with served_shop(tmp_path, **SETTINGS, ALIPAY_SANDBOX_NOTIFY_SPEEDUP=ALIPAY_SPEEDUP) as shop:
        yield shop


def refunds_at_gateway(app, provider, order_sn) -> list[Decimal]:
    """What the provider's offline gateway refunded of the order's trade, refund by refund."""
    if provider == "alipay":
        return list(app.wsgi_app.mounts["/alipay-sandbox"].ledger.get(order_sn).refunds.values())
    return [apiv3.from_fen(fen) for _, fen, _ in gateway_of(app).trades[order_sn].refunds.values()]


def finished_notifies(app):
    for site in app.wsgi_app.mounts.values():
        if getattr(site, "notifier", None) is not None:
            assert site.notifier.join(10)


@pytest.mark.parametrize("second", ["wechatpay", "alipay"])
def test_paid_by_both_wallets_the_second_payment_is_refunded_through_its_own_provider(both, second):
    app, base_url = both
    before = open_order(app)
    sn = before["order_sn"]
    browser, qr = qr_page(base_url, sn)  # the QR page in one tab...
    _, cashier = start_on_cashier(app, base_url, sn, browser)  # ...支付宝's cashier in another
    pay = {
        "wechatpay": lambda: scan_and_pay(browser, base_url, qr),
        "alipay": lambda: pay_on_alipay(cashier, session=browser),
    }
    first = OTHER[second]
    pay[first]()
    wait_until_fulfilled(browser, base_url, sn)
    pay[second]()  # the shopper pays with the other wallet as well

    payments = wait_for(
        timeout=15, check=lambda: (found := payments_of(app, sn))[second].payment_status == 4 and found
    )

    kept, returned = payments[first], payments[second]
    assert (kept.payment_status, kept.refund_reason, kept.refunded) == (1, None, 0)
    assert (returned.refund_reason, returned.refunded, returned.flag) == (
        "paid_twice",
        returned.total_amount,
        None,
    )
    assert refunds_at_gateway(app, second, sn) == [returned.total_amount]  # once, all of it
    assert refunds_at_gateway(app, first, sn) == []
    finished_notifies(app)
    app.extensions["gmall"].bus.join()
    log = [(e.provider, e.outcome, e.accepted) for e in notify_log(app) if e.source == "notify"]
    assert log[:2] == [(first, "paid", True), (second, "paid_twice", True)]
    # then the second provider's word on our refund (支付宝's TRADE_CLOSED, 微信支付's
    # REFUND.SUCCESS): accepted as the refund it is, whichever came first, it or the refund's answer
    assert log[2:] and all(
        provider == second and accepted and outcome in ("refunded", "duplicate")
        for provider, outcome, accepted in log[2:]
    ), log
    assert payments_of(app, sn)[second].flag is None
    view = browser.get(f"{base_url}/api/orders/{sn}").json()
    assert (view["status"], view["points_awarded"]) == ("awaiting_shipment", True)
    assert shop_state(app, before) == fulfilled_once(before)  # for the one payment that counts
