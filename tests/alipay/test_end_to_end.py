"""End to end over real HTTP on loopback: the shop and the offline gateway as real servers, the real SDK.

A shopper pays on the gateway's cashier, the notify arrives, the order ends up paid and
fulfilled; query, refund and close answer through python-alipay-sdk.
"""

import re
from decimal import Decimal

import pytest
from support.alipay import pay_on_cashier, start_on_cashier
from support.servers import serving
from support.shop import make_app, member_orders, notify_log, snapshot, wait_for

from gmall_payment.core.errors import ProviderError
from gmall_payment.core.model import PaymentStatus, TradeStatus
from gmall_payment.plugins import rsa2
from gmall_payment.plugins.alipay.gateway import make_gateway_app


def payment_of(app, order_sn):
    with app.app_context():
        [payment] = [p for p in app.extensions["gmall"].payments.uow().payments.for_order(order_sn)]
        return payment


def fulfilled(browser, base_url, order_sn):
    view = browser.get(f"{base_url}/api/orders/{order_sn}").json()
    return view if view["points_awarded"] and view["status"] == "awaiting_shipment" else None


@pytest.mark.parametrize("scenario", ["normal", "duplicate", "empty", "brace"])
def test_pay_query_and_refund_end_to_end(shop, scenario):
    app, gateway, base_url = shop
    order_sn = member_orders(app)[0]
    browser, cashier = start_on_cashier(app, base_url, order_sn)

    returned = pay_on_cashier(cashier, scenario=scenario, session=browser, follow=True)
    assert returned.status_code == 200 and "/pay/return/alipay" in returned.url  # back on the shop's page
    view = wait_for(lambda: fulfilled(browser, base_url, order_sn))
    assert gateway.notifier.join(10)
    app.extensions["gmall"].bus.join()

    trade = gateway.ledger.get(order_sn)
    [payment_view] = view["payments"]
    assert (payment_view["status"], payment_view["trade_no"]) == ("paid", trade.trade_no)
    assert payment_view["total_amount"] == view["pay_amount"] == f"{trade.total_amount:.2f}"
    log = notify_log(app)
    assert [e.outcome for e in log] == (["paid", "duplicate"] if scenario == "duplicate" else ["paid"])
    assert all(e.verified and e.accepted and e.notify_id for e in log)
    assert snapshot(app)[2] == 2  # payment.succeeded and order.paid, once each

    provider = app.extensions["gmall"].providers.get("alipay")
    payment = payment_of(app, order_sn)
    assert provider.query(payment).status is TradeStatus.PAID  # an SDK call from the shop to the gateway
    amount = payment.total_amount
    partial = provider.refund(payment, Decimal("0.01"), f"{order_sn}-R1")
    repeated = provider.refund(payment, Decimal("0.01"), f"{order_sn}-R1")
    full = provider.refund(payment, amount - Decimal("0.01"), f"{order_sn}-R2")
    assert [(r.fund_change, r.refunded_total) for r in (partial, repeated, full)] == [
        (True, Decimal("0.01")),
        (False, Decimal("0.01")),
        (True, amount),
    ]
    assert provider.query(payment).status is TradeStatus.CLOSED


def test_tampered_notify_leaves_the_order_unpaid_and_is_retried(shop):
    app, gateway, base_url = shop
    order_sn = member_orders(app)[0]
    _, cashier = start_on_cashier(app, base_url, order_sn)
    pay_on_cashier(cashier, scenario="tampered")
    assert gateway.notifier.join(10)

    assert len(gateway.notifier.attempts) == 8 and not any(a.acknowledged for a in gateway.notifier.attempts)
    assert {a.body for a in gateway.notifier.attempts} == {"failure"}
    assert payment_of(app, order_sn).payment_status is PaymentStatus.UNPAID
    log = notify_log(app)
    assert len(log) == 8 and {(e.outcome, e.verified, e.accepted) for e in log} == {
        ("bad_signature", False, False)
    }
    assert len({e.notify_id for e in log}) == 1  # one notify, retried


def test_lost_notify_then_only_query_tells_the_truth_and_reconciliation_asks(shop):
    app, gateway, base_url = shop
    order_sn, never_started = member_orders(app)[:2]
    browser, cashier = start_on_cashier(app, base_url, order_sn)
    pay_on_cashier(cashier, scenario="lost")
    assert gateway.notifier.join(5)
    with app.app_context():  # chose 支付宝 and left before the cashier: Alipay has no such trade
        app.extensions["gmall"].payments.start(never_started, "alipay")

    payment = payment_of(app, order_sn)
    assert payment.payment_status is PaymentStatus.UNPAID and notify_log(app) == []
    assert app.extensions["gmall"].providers.get("alipay").query(payment).status is TradeStatus.PAID

    reconciled = app.test_cli_runner().invoke(args=["reconcile"])

    assert reconciled.exit_code == 0, reconciled.output
    assert f"alipay {order_sn} (order {order_sn}): paid" in reconciled.output
    assert f"alipay {never_started} (order {never_started}): not_started" in reconciled.output
    view = wait_for(lambda: fulfilled(browser, base_url, order_sn))
    assert (view["payments"][0]["status"], view["payments"][0]["trade_no"]) == (
        "paid",
        gateway.ledger.get(order_sn).trade_no,
    )
    assert sorted((e.source, e.out_trade_no, e.outcome) for e in notify_log(app)) == sorted(
        [("query", order_sn, "paid"), ("query", never_started, "not_started")]
    )
    assert payment_of(app, never_started).payment_status is PaymentStatus.UNPAID


def test_close_an_unpaid_trade_closes_the_payment_through_the_notify(shop):
    app, gateway, base_url = shop
    order_sn = member_orders(app)[0]
    start_on_cashier(app, base_url, order_sn)
    provider = app.extensions["gmall"].providers.get("alipay")

    provider.close(payment_of(app, order_sn))
    assert gateway.notifier.join(5)

    assert payment_of(app, order_sn).payment_status is PaymentStatus.CLOSED
    assert [e.outcome for e in notify_log(app)] == ["closed"]
    with pytest.raises(ProviderError):
        provider.close(payment_of(app, order_sn))


def test_confirm_with_query_checks_a_paid_notify_with_the_gateway(tmp_path, settings, gateway_keys):
    gateway = make_gateway_app(settings)
    with serving(gateway) as gateway_url:
        app = make_app(
            tmp_path,
            **settings,
            ALIPAY_GATEWAY_URL=f"{gateway_url}/gateway.do",
            ALIPAY_CONFIRM_WITH_QUERY="true",
        )
        with serving(app) as base_url:
            app.config["PUBLIC_URL"] = base_url
            first, second = member_orders(app)[:2]
            browser, cashier = start_on_cashier(app, base_url, first)
            pay_on_cashier(cashier)
            assert gateway.notifier.join(10)
            assert payment_of(app, first).payment_status is PaymentStatus.PAID

            # A correctly signed "paid" notify for a trade the gateway says is unpaid: refused.
            start_on_cashier(app, base_url, second, browser)
            trade = gateway.ledger.get(second)
            params = gateway.notify_params(trade)
            params.update(trade_status="TRADE_SUCCESS")
            params["sign"] = rsa2.sign(params, gateway_keys[0])
            answer = browser.post(f"{base_url}/pay/success", data=params)
    assert answer.text == "failure"
    assert payment_of(app, second).payment_status is PaymentStatus.UNPAID
    last = notify_log(app)[-1]
    assert (last.outcome, last.verified) == ("not_confirmed", True)
    assert "pending" in last.detail


def test_embedded_default_pays_with_alipay_offline(tmp_path):
    """No Alipay keys at all: the shop mounts the offline gateway and a newcomer pays with 支付宝."""
    app = make_app(tmp_path, ALIPAY_SANDBOX_NOTIFY_SPEEDUP=24000)
    with serving(app) as base_url:
        app.config["PUBLIC_URL"] = base_url
        order_sn = member_orders(app)[0]
        browser, cashier = start_on_cashier(app, base_url, order_sn)
        assert cashier.url.startswith(f"{base_url}/alipay-sandbox/gateway.do")
        returned = pay_on_cashier(cashier, session=browser, follow=True)
        assert re.search(r"/pay/return/alipay\?.*out_trade_no=" + order_sn, returned.url)
        view = wait_for(lambda: fulfilled(browser, base_url, order_sn))
        seed_return = browser.get(f"{base_url}/pay/ok", params={"out_trade_no": order_sn})
        provider = app.extensions["gmall"].providers.get("alipay")
        queried = provider.query(payment_of(app, order_sn))  # the shop calling its own gateway over HTTP
    assert view["payments"][0]["status"] == "paid"
    assert 'data-status="awaiting_shipment"' in seed_return.text
    assert queried.status is TradeStatus.PAID
    assert [e.outcome for e in notify_log(app)] == ["paid"]
