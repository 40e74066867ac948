"""Alipay's refund notifications (退款通知): each refund is notified to the pay request's notify_url,
TRADE_SUCCESS with refund_fee, gmt_refund and out_biz_no after a partial one, TRADE_CLOSED after the
last. The offline gateway sends them; the shop verifies them, settles the refund they name, flags
money that went back without it, and never marks anything paid a second time."""

from decimal import Decimal

import pytest
from sqlalchemy import select
from support.alipay import a_payment, pay_on_cashier, shop_and_gateway, signed_notify, start_on_cashier
from support.shop import member_orders, notify_log, snapshot, wait_for

from gmall_payment.adapters.sql.models import OutboxEvent, db
from gmall_payment.core.errors import NotificationRejected, ProviderError, RefundPending
from gmall_payment.core.model import PaymentStatus, RefundNotice, RefundStatus, TradeStatus


@pytest.fixture
def shop(tmp_path, settings):
    """The gateway and the shop, each served, and an order paid with Alipay and fulfilled."""
    with shop_and_gateway(tmp_path, settings) as (app, gateway, base_url):
        order_sn = member_orders(app)[0]
        browser, cashier = start_on_cashier(app, base_url, order_sn)
        pay_on_cashier(cashier, session=browser)
        wait_for(lambda: [e.outcome for e in notify_log(app)] == ["paid"])
        app.extensions["gmall"].bus.join()
        yield app, gateway, order_sn


def services(app):
    return app.extensions["gmall"]


def the_payment(app, order_sn):
    with app.app_context():
        [payment] = services(app).payments.uow().payments.for_order(order_sn)
        return payment


def refund_notifies(app, count):
    """The notify log's entries after the payment's, once ``count`` of them are in."""
    return wait_for(lambda: (log := notify_log(app)[1:]) and len(log) >= count and log)


def test_a_partial_refund_then_the_rest_are_notified_verified_and_settled_once(shop):
    app, gateway, order_sn = shop
    payment = the_payment(app, order_sn)
    total = payment.total_amount
    events_after_paying = snapshot(app)[2]

    with app.app_context():
        services(app).refunds.refund(payment.id, "0.01", f"{order_sn}-R1")
    [partial] = refund_notifies(app, 1)
    assert the_payment(app, order_sn).payment_status == PaymentStatus.PARTIALLY_REFUNDED

    with app.app_context():
        services(app).refunds.refund(payment.id, total - Decimal("0.01"), f"{order_sn}-R2")
    [_, full] = refund_notifies(app, 2)
    assert gateway.notifier.join(10)

    for entry, status, request_no, refund_fee in (
        (partial, "TRADE_SUCCESS", f"{order_sn}-R1", "0.01"),
        (full, "TRADE_CLOSED", f"{order_sn}-R2", f"{total:.2f}"),
    ):
        assert (entry.verified, entry.accepted) == (True, True)
        # the refund's own answer usually comes first ("duplicate"); a notify that overtakes it settles it
        assert entry.outcome in ("duplicate", "refunded"), entry.outcome
        assert f"trade_status={status}" in entry.raw and f"out_biz_no={request_no}" in entry.raw
        assert f"refund_fee={refund_fee}" in entry.raw and "gmt_refund=" in entry.raw
    payment = the_payment(app, order_sn)
    assert (payment.payment_status, payment.refunded, payment.flag) == (PaymentStatus.REFUNDED, total, None)
    assert gateway.ledger.get(order_sn).trade_status == "TRADE_CLOSED"
    app.extensions["gmall"].bus.join()
    # Nothing paid again: after payment.succeeded and order.paid only the refund's order.refunded.
    with app.app_context():
        names = [event.name for event in db.session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))]
    assert len(names) == events_after_paying + 1 and names.count("payment.succeeded") == 1, names


@pytest.mark.parametrize(("amount", "status"), [("0.01", "TRADE_SUCCESS"), (None, "TRADE_CLOSED")])
def test_when_the_refunds_answer_is_lost_its_notify_settles_it(shop, monkeypatch, amount, status):
    app, gateway, order_sn = shop
    payment = the_payment(app, order_sn)
    amount = Decimal(amount) if amount else payment.total_amount
    provider = services(app).providers.get("alipay")
    refund_at_alipay = provider.refund

    def answer_lost(*args):
        refund_at_alipay(*args)  # Alipay refunds; its answer never reaches the shop
        raise ProviderError("read timed out", retryable=True)

    monkeypatch.setattr(provider, "refund", answer_lost)
    with app.app_context(), pytest.raises(RefundPending):
        services(app).refunds.refund(payment.id, amount, f"{order_sn}-R1")

    [entry] = refund_notifies(app, 1)
    assert (entry.verified, entry.accepted, entry.outcome) == (True, True, "refunded")
    assert f"trade_status={status}" in entry.raw
    with app.app_context():
        [refund] = services(app).refunds.refunds(payment.id)
    payment = the_payment(app, order_sn)
    assert (refund.status, payment.refunded, payment.flag) == (RefundStatus.SUCCEEDED, amount, None)
    assert payment.payment_status == (
        PaymentStatus.PARTIALLY_REFUNDED if status == "TRADE_SUCCESS" else PaymentStatus.REFUNDED
    )


def test_a_refund_made_at_alipay_without_the_shop_is_flagged_and_nothing_else_changes(shop):
    app, gateway, order_sn = shop
    before = snapshot(app)
    provider = services(app).providers.get("alipay")

    refund = provider.refund(the_payment(app, order_sn), Decimal("1.00"), "BY-HAND-1")  # not through the shop

    assert refund.fund_change
    [entry] = refund_notifies(app, 1)
    assert (entry.verified, entry.accepted, entry.outcome) == (True, True, "unknown_refund")
    payment = the_payment(app, order_sn)
    assert "BY-HAND-1" in payment.flag and "never asked for" in payment.flag
    assert snapshot(app) == before  # still paid, the same trade, no event


# the notify as the provider reads it


@pytest.mark.parametrize(
    ("fields", "status", "refund"),
    [
        ({}, TradeStatus.PAID, None),  # paying: no refund in it
        ({"trade_status": "TRADE_CLOSED", "gmt_close": "2024-11-11 00:30:00"}, TradeStatus.CLOSED, None),
        (
            {"refund_fee": "30.00", "gmt_refund": "2024-11-12 10:00:00.123", "out_biz_no": "R1"},
            TradeStatus.PAID,
            RefundNotice("R1", None, True, refunded_total=Decimal("30.00")),
        ),
        (
            {
                "trade_status": "TRADE_CLOSED",
                "refund_fee": "123.45",
                "gmt_refund": "2024-11-12 10:00:00.123",
                "gmt_close": "2024-11-12 10:00:00",
                "out_biz_no": "R2",
            },
            TradeStatus.CLOSED,
            RefundNotice("R2", None, True, refunded_total=Decimal("123.45")),
        ),
    ],
)
def test_a_notify_is_about_a_refund_when_it_carries_one(provider, gateway_keys, fields, status, refund):
    notification = provider.parse_notification(
        signed_notify(a_payment(), gateway_keys[0], provider.config, **fields)
    )
    assert (notification.status, notification.refund) == (status, refund)


@pytest.mark.parametrize(
    "fields",
    [
        {"gmt_refund": "2024-11-12 10:00:00.123", "refund_fee": "30.00"},  # which refund?
        {"gmt_refund": "2024-11-12 10:00:00.123", "out_biz_no": "R1"},  # how much?
        {"gmt_refund": "2024-11-12 10:00:00.123", "out_biz_no": "R1", "refund_fee": "30.001"},
    ],
)
def test_a_refund_notify_that_cannot_be_read_is_refused_as_malformed(provider, gateway_keys, fields):
    with pytest.raises(NotificationRejected) as rejected:
        provider.parse_notification(signed_notify(a_payment(), gateway_keys[0], provider.config, **fields))
    assert rejected.value.reason == "malformed"
