"""A WeChat Pay payment's life after checkout, over real HTTP with the offline gateway: a lost
notify paid by reconciliation's query, expiry closing the trade, partial and full refunds."""

import contextlib
import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from gmall_payment_wechatpay import apiv3
from sqlalchemy import select, update
from support.shop import notify_log, open_order, wait_for, wait_until_fulfilled
from wechat_support import gateway_of, payment_of, qr_page, scan_and_pay

from gmall_payment.adapters.sql.models import Order, PaymentInfo, db
from gmall_payment.core.errors import ProviderError, RefundFailed, RefundPending
from gmall_payment.plugins import rsa2


def log_of(app, order_sn):
    return [(e.source, e.outcome, e.accepted) for e in notify_log(app) if e.out_trade_no == order_sn]


def test_a_lost_notify_is_paid_by_reconciliations_query(live):
    app, base_url = live
    order_sn = open_order(app)["order_sn"]
    browser, page = qr_page(base_url, order_sn)
    assert 'data-state="SUCCESS"' in scan_and_pay(browser, base_url, page, scenario="lost").text
    assert notify_log(app) == [] and payment_of(app, order_sn).payment_status == 0

    reconciled = app.test_cli_runner().invoke(args=["reconcile"])

    assert reconciled.exit_code == 0, reconciled.output
    wait_until_fulfilled(browser, base_url, order_sn)
    assert log_of(app, order_sn) == [("query", "paid", True)]
    assert payment_of(app, order_sn).trade_no == gateway_of(app).trades[order_sn].transaction_id


def test_checkout_tells_wechat_pay_the_orders_expiry_and_expiry_closes_the_trade(live):
    app, base_url = live
    order_sn = open_order(app)["order_sn"]
    browser, page = qr_page(base_url, order_sn)
    trade = gateway_of(app).trades[order_sn]
    with app.app_context():
        placed = db.session.scalar(select(Order.create_time).where(Order.order_sn == order_sn))
    deadline = (
        (placed + timedelta(seconds=1800)).replace(microsecond=0).astimezone()
    )  # ORDER_PAY_TIMEOUT_SECONDS
    assert trade.time_expire == deadline
    assert trade.time_expire.utcoffset() == timedelta(hours=8)
    with app.app_context():  # the shop's clock says the order is overdue; WeChat Pay's trade is still open
        db.session.execute(
            update(Order)
            .where(Order.order_sn == order_sn)
            .values(create_time=datetime.now() - timedelta(hours=1))
        )
        db.session.commit()

    expired = app.test_cli_runner().invoke(args=["expire"])

    assert f"{order_sn}: closed" in expired.output, expired.output
    assert trade.trade_state == "CLOSED"  # closed at WeChat Pay by the shop's close request
    assert ("close", "closed", True) in log_of(app, order_sn)
    with app.app_context():
        assert (
            db.session.scalar(select(PaymentInfo.payment_status).where(PaymentInfo.order_sn == order_sn)) == 2
        )
    refused = browser.get(
        f"{base_url}/wechatpay-sandbox/scan", params={"code_url": trade.code_url}
    )  # the phone
    assert refused.status_code == 409 and "CLOSED" in refused.text
    wait_for(lambda: browser.get(f"{base_url}/api/orders/{order_sn}").json()["status"] == "closed")


def test_a_partial_then_a_full_refund_each_once(live):
    app, base_url = live
    order_sn = open_order(app)["order_sn"]
    browser, page = qr_page(base_url, order_sn)
    scan_and_pay(browser, base_url, page)
    wait_until_fulfilled(browser, base_url, order_sn)
    payment = payment_of(app, order_sn)
    gateway = gateway_of(app)
    refunds = app.extensions["gmall"].refunds
    with app.app_context():
        first = refunds.refund(payment.id, Decimal("0.01"), f"{order_sn}-R1")
        again = refunds.refund(payment.id, Decimal("0.01"), f"{order_sn}-R1")
        assert payment_of(app, order_sn).payment_status == 3  # partially refunded
        rest = refunds.refund(payment.id, payment.total_amount - Decimal("0.01"), f"{order_sn}-R2")
    assert (first.status, again.id, rest.status) == (1, first.id, 1)
    trade = gateway.trades[order_sn]
    assert {no: fen for no, (_, fen, _) in trade.refunds.items()} == {
        f"{order_sn}-R1": 1,
        f"{order_sn}-R2": apiv3.to_fen(payment.total_amount) - 1,
    }
    assert payment_of(app, order_sn).payment_status == 4 and trade.trade_state == "REFUND"
    assert gateway.notifier.join(10)
    refund_notes = [e for e in notify_log(app) if e.source == "notify" and "REFUND.SUCCESS" in e.raw]
    # Each notice arrives as the refund's own answer does: whichever comes second finds it done.
    assert len(refund_notes) == 2 and all(e.accepted and e.verified for e in refund_notes)
    assert {e.outcome for e in refund_notes} <= {"refunded", "duplicate"}
    assert payment_of(app, order_sn).refunded == payment.total_amount  # counted once each
    assert app.extensions["gmall"].providers.get("wechatpay").query(payment).status.value == "paid"


def test_a_processing_refund_is_completed_by_its_refund_success_notification(live):
    app, base_url = live
    order_sn = open_order(app)["order_sn"]
    browser, page = qr_page(base_url, order_sn)
    scan_and_pay(browser, base_url, page)
    wait_until_fulfilled(browser, base_url, order_sn)
    payment = payment_of(app, order_sn)
    gateway_of(app).refunds_processing = True
    refunds = app.extensions["gmall"].refunds
    with app.app_context(), contextlib.suppress(RefundPending):  # PROCESSING: no answer yet
        refunds.refund(payment.id, Decimal("1.00"), f"{order_sn}-R1")
    assert gateway_of(app).notifier.join(10)
    with app.app_context():
        [refund] = refunds.refunds(payment.id)
    assert (refund.status, payment_of(app, order_sn).payment_status) == (
        1,
        3,
    )  # succeeded; partially refunded
    assert payment_of(app, order_sn).refunded == Decimal("1.00")
    notes = [e for e in notify_log(app) if "REFUND.SUCCESS" in e.raw]
    assert [(e.outcome, e.accepted) for e in notes] == [("refunded", True)]


def test_a_refund_wechat_pay_refuses_changes_nothing(live):
    app, base_url = live
    order_sn = open_order(app)["order_sn"]
    browser, page = qr_page(base_url, order_sn)
    scan_and_pay(browser, base_url, page)
    wait_until_fulfilled(browser, base_url, order_sn)
    payment = payment_of(app, order_sn)
    gateway_of(app).balance = 0
    with app.app_context(), pytest.raises(RefundFailed, match="NOT_ENOUGH"):
        app.extensions["gmall"].refunds.refund(payment.id, Decimal("0.01"), f"{order_sn}-R1")
    after = payment_of(app, order_sn)
    assert (after.payment_status, after.refund_reserved, after.refunded) == (1, 0, 0)
    assert gateway_of(app).trades[order_sn].refunds == {}


def test_answers_signed_with_another_key_are_not_believed(live):
    app, base_url = live
    order_sn = open_order(app)["order_sn"]
    qr_page(base_url, order_sn)
    provider = app.extensions["gmall"].providers.get("wechatpay")
    stranger = rsa2.generate_key_pair()[1]
    [serial] = provider.config.wechat_keys
    provider.client.config = dataclasses.replace(provider.config, wechat_keys={serial: stranger})
    with pytest.raises(ProviderError, match="not believed"):
        provider.query(payment_of(app, order_sn))
    provider.client.config = provider.config
    assert provider.query(payment_of(app, order_sn)).status.value == "pending"


def test_requests_signed_with_another_key_are_refused_by_the_gateway(live):
    app, base_url = live
    order_sn = open_order(app)["order_sn"]
    qr_page(base_url, order_sn)
    provider = app.extensions["gmall"].providers.get("wechatpay")
    provider.client.config = dataclasses.replace(provider.config, private_key=rsa2.generate_key_pair()[0])
    with pytest.raises(ProviderError, match="401 SIGN_ERROR"):
        provider.query(payment_of(app, order_sn))
