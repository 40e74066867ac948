"""RefundService: full and partial refunds, once per out_request_no, never more than was paid."""

import dataclasses
from decimal import Decimal

import pytest

from gmall_payment.core import events
from gmall_payment.core.errors import (
    InvalidAmount,
    NotSupported,
    PaymentNotFound,
    PointsNotSettledYet,
    ProviderError,
    RefundFailed,
    RefundPending,
    RefundRefused,
)
from gmall_payment.core.model import OrderStatus, PaymentStatus, PointsKind, RefundNotice, RefundStatus
from gmall_payment.ports.plugins import ProviderRegistry

SN = "202411110001"


@pytest.fixture
def fakepay(refunding):
    return refunding("fakepay")


@pytest.fixture
def registry(fakepay, refunding):
    return ProviderRegistry([fakepay, refunding("otherpay")])


@pytest.fixture
def paid(payments, make_order, notify_params, db):
    """A payment of 123.45 for order SN, paid; ``paid.order_status`` set its order's status."""
    payment = payments.start(make_order(SN), "fakepay")
    assert payments.handle_notification("fakepay", notify_params()).outcome == "paid"
    return db.tables.payments[payment.id]


def refunds_of(db, payment):
    return sorted((r for r in db.tables.refunds.values() if r.payment_id == payment.id), key=lambda r: r.id)


def test_a_full_refund(refunds, paid, fakepay, db):
    refund = refunds.refund(paid.id, "123.45", "R1")

    assert (refund.status, refund.amount, refund.out_request_no, refund.reason) == (
        RefundStatus.SUCCEEDED,
        Decimal("123.45"),
        "R1",
        "operator",
    )
    assert '"fund_change": "True"' in refund.answer and '"refunded_total": "123.45"' in refund.answer
    assert (paid.payment_status, paid.refund_reserved, paid.refunded) == (
        PaymentStatus.REFUNDED,
        Decimal("123.45"),
        Decimal("123.45"),
    )
    assert fakepay.refunded(SN) == Decimal("123.45") and fakepay.calls == ["R1"]


def test_partial_refunds_then_the_rest(refunds, paid, fakepay):
    refunds.refund(paid.id, Decimal("23.45"), "R1")
    assert (paid.payment_status, paid.refunded) == (PaymentStatus.PARTIALLY_REFUNDED, Decimal("23.45"))
    refunds.refund(paid.id, Decimal("0.01"), "R2")
    assert (paid.payment_status, paid.refunded) == (PaymentStatus.PARTIALLY_REFUNDED, Decimal("23.46"))

    refunds.refund(paid.id, Decimal("99.99"), "R3")

    assert (paid.payment_status, paid.refunded, paid.refund_reserved) == (
        PaymentStatus.REFUNDED,
        Decimal("123.45"),
        Decimal("123.45"),
    )
    assert [r.out_request_no for r in refunds.refunds(paid.id)] == ["R1", "R2", "R3"]


def test_the_same_key_again_is_the_same_refund(refunds, paid, fakepay, db):
    first = refunds.refund(paid.id, "10.00", "R1")
    again = refunds.refund(paid.id, "10.00", "R1")

    assert again == first
    assert fakepay.calls == ["R1"]  # a refund that succeeded asks nobody again
    assert (paid.refunded, len(refunds_of(db, paid))) == (Decimal("10.00"), 1)
    with pytest.raises(RefundRefused) as reused:
        refunds.refund(paid.id, "10.01", "R1")
    assert reused.value.reason == "request_no_reused" and "10.00, not 10.01" in str(reused.value)


def test_partial_refunds_summing_past_the_amount_are_refused_clearly(refunds, paid, fakepay, db):
    refunds.refund(paid.id, "100.00", "R1")

    with pytest.raises(RefundRefused) as refused:
        refunds.refund(paid.id, "23.46", "R2")

    assert refused.value.reason == "exceeds_payment"
    assert str(refused.value) == (
        "refund of 23.46 refused: 100.00 of the 123.45 paid is refunded or being "
        "refunded already, so at most 23.45 can be refunded"
    )
    assert fakepay.calls == ["R1"]  # the provider was not asked
    assert [r.out_request_no for r in refunds_of(db, paid)] == ["R1"]
    assert (paid.payment_status, paid.refund_reserved) == (
        PaymentStatus.PARTIALLY_REFUNDED,
        Decimal("100.00"),
    )


def test_only_a_paid_payment_can_be_refunded(refunds, payments, make_order, db):
    unpaid = payments.start(make_order(SN), "fakepay")
    with pytest.raises(RefundRefused) as refused:
        refunds.refund(unpaid.id, "1.00", "R1")
    assert refused.value.reason == "not_refundable" and "unpaid (未支付)" in str(refused.value)
    assert db.tables.refunds == {}
    with pytest.raises(PaymentNotFound):
        refunds.refund(999, "1.00", "R1")


@pytest.mark.parametrize("key", ["", "has space", "x" * 65, "退款", None])
def test_the_key_must_be_one_alipay_takes(refunds, paid, key):
    with pytest.raises(RefundRefused) as refused:
        refunds.refund(paid.id, "1.00", key)
    assert refused.value.reason == "bad_request_no"


@pytest.mark.parametrize("amount", ["0", "-1.00", "1.001", "abc", 1.5])
def test_the_amount_must_be_money(refunds, paid, amount):
    with pytest.raises(InvalidAmount):
        refunds.refund(paid.id, amount, "R1")


def test_a_lost_answer_leaves_a_pending_refund_that_the_same_key_completes(refunds, paid, fakepay, db):
    fakepay.failures = [
        (ProviderError("Alipay gateway call failed: timed out"), True)
    ]  # refunded, answer lost

    with pytest.raises(RefundPending) as pending:
        refunds.refund(paid.id, "50.00", "R1")

    assert "retry with the same out_request_no" in str(pending.value)
    [refund] = refunds_of(db, paid)
    assert (refund.status, paid.refund_reserved, paid.refunded) == (RefundStatus.PENDING, Decimal("50.00"), 0)
    assert "timed out" in refund.answer
    assert paid.payment_status == PaymentStatus.PAID
    with pytest.raises(RefundRefused):  # the pending amount counts against what is left
        refunds.refund(paid.id, "73.46", "R2")

    done = refunds.refund(paid.id, "50.00", "R1")

    assert done.status == RefundStatus.SUCCEEDED and '"fund_change": "False"' in done.answer
    assert fakepay.refunded(SN) == Decimal("50.00")  # money moved once
    assert (paid.payment_status, paid.refund_reserved, paid.refunded) == (
        PaymentStatus.PARTIALLY_REFUNDED,
        Decimal("50.00"),
        Decimal("50.00"),
    )


def test_a_refusal_fails_the_refund_and_frees_its_amount(refunds, paid, fakepay, db):
    fakepay.failures = [
        (ProviderError("交易状态不合法", code="40004", sub_code="ACQ.TRADE_STATUS_ERROR"), False)
    ]

    with pytest.raises(RefundFailed) as failed:
        refunds.refund(paid.id, "123.45", "R1")

    assert "ACQ.TRADE_STATUS_ERROR" in str(failed.value)
    [refund] = refunds_of(db, paid)
    assert (refund.status, paid.refund_reserved, paid.payment_status) == (
        RefundStatus.FAILED,
        0,
        PaymentStatus.PAID,
    )
    assert "ACQ.TRADE_STATUS_ERROR" in refund.answer
    retried = refunds.refund(paid.id, "123.45", "R1")  # the same key tries again
    assert retried.status == RefundStatus.SUCCEEDED and paid.payment_status == PaymentStatus.REFUNDED


def test_a_provider_that_cannot_refund(refunds, payments, make_order, notify_params, db, registry):
    payment = payments.start(make_order(SN), "otherpay")
    payments.handle_notification("otherpay", notify_params())
    registry.get("otherpay").failures = [(NotSupported("otherpay cannot refund"), False)]

    with pytest.raises(NotSupported):
        refunds.refund(payment.id, "1.00", "R1")

    [refund] = refunds_of(db, payment)
    assert refund.status == RefundStatus.FAILED and db.tables.payments[payment.id].refund_reserved == 0


def test_racing_refunds_never_exceed_the_payment(refunds, paid, fakepay, race):
    def attempt(i):
        try:
            return refunds.refund(paid.id, "20.00", f"R{i}").status
        except RefundRefused as refused:
            return refused.reason

    results = race(8, attempt)

    assert sorted(map(str, results)) == sorted(["exceeds_payment"] * 2 + [str(RefundStatus.SUCCEEDED)] * 6)
    assert paid.refunded == fakepay.refunded(SN) == Decimal("120.00")


def test_racing_repeats_of_one_key_refund_once(refunds, paid, fakepay, race):
    results = race(8, lambda i: refunds.refund(paid.id, "20.00", "R1"))

    assert len({r.id for r in results}) == 1 and {r.status for r in results} == {RefundStatus.SUCCEEDED}
    assert paid.refunded == fakepay.refunded(SN) == Decimal("20.00")


# the points of a refunded order


@pytest.fixture
def fulfilled(paid, fulfilment, db):
    for step in ("mark_order_paid", "deduct_stock", "award_points"):
        getattr(fulfilment, step)(SN)
    assert (db.tables.members[1].integration, db.tables.members[1].growth) == (123, 45)
    return paid


def test_a_fully_refunded_order_gives_its_points_back_once(refunds, fulfilled, fulfilment, db, outbox_events):
    refunds.refund(fulfilled.id, "23.45", "R1")
    assert events.ORDER_REFUNDED not in [e.name for e in outbox_events()]
    refunds.refund(fulfilled.id, "100.00", "R2")
    assert [e.name for e in outbox_events()][-1] == events.ORDER_REFUNDED

    assert fulfilment.revoke_points(SN) is True
    assert fulfilment.revoke_points(SN) is False

    assert (db.tables.members[1].integration, db.tables.members[1].growth) == (0, 0)
    assert db.tables.ledger[(SN, PointsKind.REVOKE)].integration == 123
    assert db.tables.orders[SN].status == OrderStatus.AWAITING_SHIPMENT  # the order service's business


def test_points_are_not_awarded_to_an_order_refunded_before_the_award(refunds, paid, fulfilment, db):
    fulfilment.mark_order_paid(SN)
    refunds.refund(paid.id, "123.45", "R1")
    with pytest.raises(PointsNotSettledYet):  # the award is still on its way: wait for it
        fulfilment.revoke_points(SN)

    assert fulfilment.award_points(SN) is False
    assert fulfilment.revoke_points(SN) is False

    assert (db.tables.members[1].integration, db.tables.members[1].growth) == (0, 0)
    assert set(db.tables.ledger) == set()


# Alipay closes a fully refunded trade and says so


def test_the_trade_closed_notify_after_a_full_refund_is_accepted(refunds, paid, payments, notify_params):
    refunds.refund(paid.id, "123.45", "R1")

    result = payments.handle_notification("fakepay", notify_params(trade_status="TRADE_CLOSED"))

    assert (result.accepted, result.outcome, result.body) == (True, "refunded", "success")
    assert paid.payment_status == PaymentStatus.REFUNDED and paid.flag is None


def test_the_trade_closed_notify_may_overtake_the_refunds_answer(
    refunds, paid, payments, notify_params, fakepay
):
    fakepay.failures = [(ProviderError("timed out"), True)]
    with pytest.raises(RefundPending):
        refunds.refund(paid.id, "123.45", "R1")

    result = payments.handle_notification("fakepay", notify_params(trade_status="TRADE_CLOSED"))

    assert (result.accepted, result.outcome) == (True, "refunded")
    assert paid.payment_status == PaymentStatus.PAID and paid.flag is None  # the pending refund covers it
    refunds.refund(paid.id, "123.45", "R1")
    assert paid.payment_status == PaymentStatus.REFUNDED


# a provider's notification about a refund (WeChat Pay's REFUND.*): RefundService.apply_notice


@pytest.fixture
def pending(refunds, paid, fakepay, db):
    """Refund R1 of 50.00, asked for and not answered (pending)."""
    fakepay.failures = [(ProviderError("timed out"), False)]
    with pytest.raises(RefundPending):
        refunds.refund(paid.id, "50.00", "R1")
    return refunds_of(db, paid)[0]


@pytest.mark.parametrize(
    ("succeeded", "outcome", "status", "refunded", "reserved"),
    [
        (True, "refunded", RefundStatus.SUCCEEDED, Decimal("50.00"), Decimal("50.00")),
        (False, "refund_failed", RefundStatus.FAILED, 0, 0),
    ],
)
def test_a_notice_settles_a_pending_refund_once(
    refunds, paid, pending, db, succeeded, outcome, status, refunded, reserved
):
    notice = RefundNotice("R1", Decimal("50.00"), succeeded)
    assert refunds.apply_notice(paid, notice)[0] == outcome
    assert refunds.apply_notice(paid, notice) == ("duplicate", "")
    assert (pending.status, paid.refunded, paid.refund_reserved) == (status, refunded, reserved)


def test_a_notice_of_a_refund_never_asked_for_or_of_another_amount_flags_the_payment(
    refunds, paid, pending, db
):
    assert refunds.apply_notice(paid, RefundNotice("R9", Decimal("1.00"), True))[0] == "unknown_refund"
    assert "never asked for" in paid.flag
    assert refunds.apply_notice(paid, RefundNotice("R1", Decimal("49.00"), True))[0] == "refund_mismatch"
    assert (pending.status, paid.refunded) == (RefundStatus.PENDING, 0)


def test_a_refund_notification_takes_the_notify_path_and_is_logged(
    payments, refunds, paid, pending, db, fakepay, monkeypatch
):
    """PaymentService hands a notification carrying ``refund`` to ``refund_notices``, logs what it said."""
    payments.refund_notices = refunds.apply_notice
    original = fakepay.parse_notification

    def with_refund(params):
        return dataclasses.replace(original(params), refund=RefundNotice("R1", Decimal("50.00"), True))

    monkeypatch.setattr(fakepay, "parse_notification", with_refund)
    result = payments.handle_notification("fakepay", {**notify_params_of(paid), "notify_id": "refund-1"})
    assert (result.accepted, result.outcome) == (True, "refunded")
    assert (
        pending.status == RefundStatus.SUCCEEDED and paid.payment_status == PaymentStatus.PARTIALLY_REFUNDED
    )
    assert [r.outcome for r in db.tables.notifications.values()][-1] == "refunded"


def notify_params_of(payment):
    return {
        "sig": "ok",
        "out_trade_no": payment.out_trade_no,
        "total_amount": str(payment.total_amount),
        "trade_status": "TRADE_SUCCESS",
        "trade_no": "T1",
    }


# Alipay's notices: no amount of their own, the trade's total refunded (refund_fee)


@pytest.mark.parametrize(
    ("total", "outcome", "flagged"),
    [
        (Decimal("50.00"), "refunded", False),  # all Alipay refunded is what the shop asked for
        (Decimal("60.00"), "refunded", True),  # 10.00 more went back without the shop
    ],
)
def test_a_notice_with_the_trades_total_settles_the_refund_and_checks_the_total(
    refunds, paid, pending, total, outcome, flagged
):
    notice = RefundNotice("R1", None, True, refunded_total=total)

    result = refunds.apply_notice(paid, notice)

    assert result[0] == outcome
    assert (pending.status, paid.payment_status, paid.refunded) == (
        RefundStatus.SUCCEEDED,
        PaymentStatus.PARTIALLY_REFUNDED,
        Decimal("50.00"),
    )
    assert bool(paid.flag) is flagged and bool(result[1]) is flagged
    if flagged:
        assert "60.00" in paid.flag and "only 50.00" in paid.flag and "outside the shop" in paid.flag


def test_a_notice_after_the_refunds_own_answer_changes_nothing(refunds, paid, fakepay):
    refunds.refund(paid.id, "23.45", "R1")  # answered at once: succeeded
    first = refunds.apply_notice(paid, RefundNotice("R1", None, True, refunded_total=Decimal("23.45")))
    again = refunds.apply_notice(paid, RefundNotice("R1", None, True, refunded_total=Decimal("23.45")))

    assert first == again == ("duplicate", "")
    assert (paid.payment_status, paid.refunded, paid.flag) == (
        PaymentStatus.PARTIALLY_REFUNDED,
        Decimal("23.45"),
        None,
    )
    assert fakepay.calls == ["R1"]  # nobody asked again
