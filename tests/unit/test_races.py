"""Races: money that arrives for an order closed, or paid already, goes back by itself."""

from decimal import Decimal

import pytest

from gmall_payment.core import events
from gmall_payment.core.errors import NotSupported, ProviderError, RefundPending
from gmall_payment.core.model import OrderStatus, PaymentStatus, RefundReason, RefundStatus
from gmall_payment.ports.plugins import ProviderRegistry

SN = "202411110001"


@pytest.fixture
def fakepay(refunding):
    return refunding("fakepay")


@pytest.fixture
def otherpay(refunding):
    return refunding("otherpay")


@pytest.fixture
def registry(fakepay, otherpay):
    return ProviderRegistry([fakepay, otherpay])


@pytest.fixture
def both(payments, make_order):
    """Order SN awaiting payment, with a payment started with each provider."""
    make_order(SN)
    return payments.start(SN, "fakepay"), payments.start(SN, "otherpay")


def trace(db, order_sn=SN):
    with db.unit_of_work() as uow:
        return [(e.step, e.outcome, e.detail) for e in uow.trace.for_order(order_sn)]


def row(db, payment):
    return db.tables.payments[payment.id]


def test_paid_after_close_is_refunded_and_the_order_stays_closed(
    db, payments, refunds, both, fakepay, notify_params, outbox_events
):
    mine, _ = both
    db.tables.orders[SN].status = OrderStatus.CLOSED  # expired while the shopper was paying

    result = payments.handle_notification("fakepay", notify_params())

    assert (result.accepted, result.body, result.outcome) == (True, "success", "paid_after_close")
    assert "CLOSED" in result.detail
    assert (row(db, mine).payment_status, row(db, mine).refund_reason) == (
        PaymentStatus.PAID,
        "paid_after_close",
    )
    assert outbox_events() == [events.refund_due(SN, mine.id, "paid_after_close", Decimal("123.45"))]

    assert refunds.auto_refund(SN) is True

    assert row(db, mine).payment_status == PaymentStatus.REFUNDED
    [refund] = refunds.refunds(mine.id)
    assert (refund.out_request_no, refund.amount, refund.reason, refund.status) == (
        f"auto-{mine.id}",
        Decimal("123.45"),
        "paid_after_close",
        RefundStatus.SUCCEEDED,
    )
    assert fakepay.refunded(SN) == Decimal("123.45")
    assert db.tables.orders[SN].status == OrderStatus.CLOSED
    assert [e.name for e in outbox_events()] == [events.REFUND_DUE]  # no payment.succeeded, no order.refunded
    assert trace(db)[-1][:2] == ("auto_refund", "done")
    assert refunds.auto_refund(SN) is False and fakepay.calls == [f"auto-{mine.id}"]


def test_paid_twice_refunds_the_second_payment(
    db, payments, refunds, fulfilment, both, fakepay, otherpay, notify_params, outbox_events
):
    first, second = both

    assert payments.handle_notification("fakepay", notify_params()).outcome == "paid"
    twice = payments.handle_notification("otherpay", notify_params(trade_no="OTHER-1"))

    assert (twice.accepted, twice.outcome) == (True, "paid_twice")
    assert f"payment #{first.id}" in twice.detail
    assert [e.name for e in outbox_events()] == [events.PAYMENT_SUCCEEDED, events.REFUND_DUE]
    assert refunds.auto_refund(SN) is True
    assert fulfilment.mark_order_paid(SN) is True

    assert (row(db, first).payment_status, row(db, second).payment_status) == (
        PaymentStatus.PAID,
        PaymentStatus.REFUNDED,
    )
    assert (fakepay.calls, otherpay.calls) == ([], [f"auto-{second.id}"])
    assert db.tables.orders[SN].status == OrderStatus.AWAITING_SHIPMENT
    assert events.ORDER_REFUNDED not in [e.name for e in outbox_events()]  # the order itself stays paid


def test_two_providers_paying_at_once_pay_the_order_once(
    db, payments, both, notify_params, race, outbox_events
):
    results = race(2, lambda i: payments.handle_notification(("fakepay", "otherpay")[i], notify_params()))

    assert sorted(r.outcome for r in results) == ["paid", "paid_twice"]
    assert sorted(e.name for e in outbox_events()) == sorted([events.PAYMENT_SUCCEEDED, events.REFUND_DUE])
    owed = [p for p in db.tables.payments.values() if p.refund_reason]
    assert len(owed) == 1 and owed[0].refund_reason == RefundReason.PAID_TWICE


def test_an_order_closed_while_its_payment_was_in_flight(
    db, payments, refunds, fulfilment, both, fakepay, notify_params, outbox_events
):
    """The payment succeeded while the order was open; the order closed before it was marked paid."""
    mine, _ = both
    assert payments.handle_notification("fakepay", notify_params()).outcome == "paid"
    db.tables.orders[SN].status = OrderStatus.CLOSED

    assert fulfilment.mark_order_paid(SN) is False

    assert row(db, mine).refund_reason == "paid_after_close"
    assert [e.name for e in outbox_events()] == [events.PAYMENT_SUCCEEDED, events.REFUND_DUE]
    step, outcome, detail = trace(db)[-1]
    assert (step, outcome) == ("mark_order_paid", "skipped") and f"payment #{mine.id}" in detail
    assert fulfilment.mark_order_paid(SN) is False  # again: owed once
    assert [e.name for e in outbox_events()].count(events.REFUND_DUE) == 1
    assert refunds.auto_refund(SN) is True
    assert row(db, mine).payment_status == PaymentStatus.REFUNDED
    assert db.tables.orders[SN].status == OrderStatus.CLOSED


def test_a_provider_that_cannot_refund_flags_the_payment(
    db, payments, refunds, both, otherpay, notify_params
):
    _, second = both
    payments.handle_notification("fakepay", notify_params())
    payments.handle_notification("otherpay", notify_params())
    otherpay.failures = [(NotSupported("otherpay cannot refund"), False)]

    assert refunds.auto_refund(SN) is False

    flagged = row(db, second)
    assert flagged.payment_status == PaymentStatus.PAID
    assert flagged.flag.startswith(
        "paid_twice: the automatic refund of 123.45 failed (otherpay cannot refund)"
    )
    assert f"payments refund {second.id} 123.45 --key auto-{second.id}" in flagged.flag
    assert refunds.refunds(second.id)[0].status == RefundStatus.FAILED
    assert trace(db)[-1][:2] == ("auto_refund", "skipped")
    payments.clear_flag(second.id)  # even once an operator cleared the flag (refunded by hand?)...
    assert refunds.auto_refund(SN) is False  # ...a failed automatic refund is never tried again by itself
    assert otherpay.calls == [f"auto-{second.id}"]
    assert "left to an operator" in trace(db)[-1][2]
    retried = refunds.refund(
        second.id, "123.45", f"auto-{second.id}"
    )  # the operator tries the provider again
    assert (
        retried.status == RefundStatus.SUCCEEDED and row(db, second).payment_status == PaymentStatus.REFUNDED
    )


def test_a_provider_that_refuses_flags_the_payment(db, payments, refunds, both, fakepay, notify_params):
    mine, _ = both
    db.tables.orders[SN].status = OrderStatus.CLOSED
    payments.handle_notification("fakepay", notify_params())
    fakepay.failures = [
        (ProviderError("交易状态不合法", code="40004", sub_code="ACQ.TRADE_STATUS_ERROR"), False)
    ]

    assert refunds.auto_refund(SN) is False

    assert "ACQ.TRADE_STATUS_ERROR" in row(db, mine).flag


def test_a_refund_without_answer_is_retried_until_it_completes(
    db, payments, refunds, both, fakepay, notify_params
):
    mine, _ = both
    db.tables.orders[SN].status = OrderStatus.CLOSED
    payments.handle_notification("fakepay", notify_params())
    fakepay.failures = [(ProviderError("timed out"), True)]

    with pytest.raises(RefundPending):  # the step fails: its actor retries it
        refunds.auto_refund(SN)
    assert refunds.refunds(mine.id)[0].status == RefundStatus.PENDING and row(db, mine).flag is None

    assert refunds.auto_refund(SN) is True
    assert row(db, mine).payment_status == PaymentStatus.REFUNDED and fakepay.refunded(SN) == Decimal(
        "123.45"
    )


def test_a_second_trade_for_a_paid_payment_is_flagged(db, payments, both, notify_params, outbox_events):
    mine, _ = both
    payments.handle_notification("fakepay", notify_params(trade_no="T-1"))

    result = payments.handle_notification("fakepay", notify_params(trade_no="T-2"))

    assert (result.accepted, result.outcome) == (True, "second_trade")
    assert "second trade T-2" in row(db, mine).flag and row(db, mine).trade_no == "T-1"
    assert [e.name for e in outbox_events()] == [events.PAYMENT_SUCCEEDED]
