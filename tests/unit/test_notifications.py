"""PaymentService.handle_notification: only an authentic, matching notify marks a payment paid."""

import copy
import json
from dataclasses import replace
from decimal import Decimal

import pytest

from gmall_payment.core import events
from gmall_payment.core.errors import TransactionConflict, UnknownProvider
from gmall_payment.core.model import PaymentStatus
from gmall_payment.core.payments import CONFLICT_ATTEMPTS, PaymentService
from gmall_payment.ports.store import relayed


@pytest.fixture
def payment(payments, make_order):
    """An unpaid payment of 123.45 for order 202411110001 with fakepay."""
    return payments.start(make_order(), "fakepay")


@pytest.fixture
def snapshot(db):
    """``snapshot()``: a deep copy of everything the store holds but the notify log (which keeps
    every notification received, by design), to prove nothing else changed."""

    def take():
        with db.lock:
            return copy.deepcopy(replace(db.tables, notifications={}))

    return take


def test_valid_paid_notification_marks_the_payment_paid(
    db, payments, payment, notify_params, stored_payments, outbox_events, after_commit_calls, clock
):
    params = notify_params(trade_no="T-0001")

    result = payments.handle_notification("fakepay", params)

    assert result.accepted is True
    assert result.outcome == "paid"
    assert (result.body, result.status) == ("success", 200)
    assert result.content_type.startswith("text/plain")
    [row] = stored_payments()
    assert row.payment_status == PaymentStatus.PAID
    assert row.trade_no == "T-0001"
    assert row.callback_time == clock.now
    assert json.loads(row.callback_content) == params
    assert result.payment.id == payment.id
    assert result.payment.payment_status == PaymentStatus.PAID
    assert outbox_events() == [
        events.Event(
            events.PAYMENT_SUCCEEDED,
            payment.order_sn,
            {"provider": "fakepay", "trade_no": "T-0001", "amount": "123.45"},
        ),
    ]
    assert after_commit_calls == [tuple(db.tables.outbox)]  # the one event's id: sent at once


def test_duplicate_notification_is_acknowledged_and_changes_nothing(
    db, payments, payment, notify_params, outbox_events, snapshot, after_commit_calls
):
    payments.handle_notification("fakepay", notify_params())
    before = snapshot()

    again = payments.handle_notification("fakepay", notify_params())

    assert again.accepted is True
    assert again.outcome == "duplicate"
    assert again.body == "success"  # so that the provider stops retrying
    assert snapshot() == before  # callback_time not overwritten, no second event
    assert [e.name for e in outbox_events()] == [events.PAYMENT_SUCCEEDED]
    assert after_commit_calls == [tuple(db.tables.outbox)]  # the one event's id: sent at once


def _assert_rejected(result, reason):
    assert result.accepted is False
    assert result.outcome == reason
    assert result.body == "failure"
    assert result.payment is None


def test_bad_signature_is_rejected(payments, payment, notify_params, snapshot, after_commit_calls):
    before = snapshot()
    result = payments.handle_notification("fakepay", notify_params(sig="forged"))
    _assert_rejected(result, "bad_signature")
    assert snapshot() == before
    assert after_commit_calls == []


@pytest.mark.parametrize("amount", ["123.44", "0.01", "123.46", "1234.5"])
def test_wrong_amount_is_rejected(payments, payment, notify_params, snapshot, amount):
    before = snapshot()
    result = payments.handle_notification("fakepay", notify_params(total_amount=amount))
    _assert_rejected(result, "amount_mismatch")
    assert amount in result.detail and "123.45" in result.detail
    assert snapshot() == before


@pytest.mark.parametrize("amount", ["123.450", "123.4500", " 123.45"])
def test_same_amount_written_differently_is_accepted(
    payments, payment, notify_params, stored_payments, amount
):
    """Amounts compare as Decimals: 123.450 is 123.45."""
    result = payments.handle_notification("fakepay", notify_params(total_amount=amount))
    assert (result.accepted, result.outcome) == (True, "paid")
    assert stored_payments()[0].payment_status == PaymentStatus.PAID


def test_unknown_trade_is_rejected(payments, payment, notify_params, snapshot):
    before = snapshot()
    result = payments.handle_notification("fakepay", notify_params(out_trade_no="999999"))
    _assert_rejected(result, "unknown_trade")
    assert "999999" in result.detail
    assert snapshot() == before


def test_notify_of_one_provider_cannot_settle_anothers_payment(payments, payment, notify_params, snapshot):
    before = snapshot()
    result = payments.handle_notification("otherpay", notify_params())
    _assert_rejected(result, "unknown_trade")
    assert snapshot() == before


def test_notify_through_a_provider_that_is_not_enabled(payments, payment, notify_params):
    with pytest.raises(UnknownProvider):
        payments.handle_notification("wechat", notify_params())


def test_notifications_are_matched_to_their_own_order(
    payments, make_order, notify_params, stored_payments, outbox_events, snapshot
):
    a = payments.start(make_order("A", pay_amount=Decimal("123.45")), "fakepay")
    b = payments.start(make_order("B", pay_amount=Decimal("99.00"), locks=()), "fakepay")
    before = snapshot()

    # A's notification (A's amount) replayed with B's out_trade_no: refused.
    replay = payments.handle_notification("fakepay", notify_params(out_trade_no="B", total_amount="123.45"))
    _assert_rejected(replay, "amount_mismatch")
    assert snapshot() == before

    paid = payments.handle_notification(
        "fakepay", notify_params(out_trade_no="B", total_amount="99.00", trade_no="T-B")
    )
    assert (paid.accepted, paid.outcome, paid.payment.id) == (True, "paid", b.id)
    statuses = {p.id: p.payment_status for p in stored_payments()}
    assert statuses == {a.id: PaymentStatus.UNPAID, b.id: PaymentStatus.PAID}
    assert [(e.name, e.order_sn) for e in outbox_events()] == [(events.PAYMENT_SUCCEEDED, "B")]


def test_closed_notification_closes_an_unpaid_payment_without_event(
    payments, payment, notify_params, stored_payments, outbox_events, after_commit_calls, clock
):
    result = payments.handle_notification("fakepay", notify_params(trade_status="TRADE_CLOSED"))
    assert (result.accepted, result.outcome, result.body) == (True, "closed", "success")
    [row] = stored_payments()
    assert row.payment_status == PaymentStatus.CLOSED
    assert row.callback_time == clock.now
    assert outbox_events() == []
    assert after_commit_calls == []


def test_paid_after_its_trade_closed_records_the_money(
    payments, payment, notify_params, stored_payments, outbox_events
):
    """The provider took the money for a trade closed here (closed here because the provider
    could not close it): the money is real, so the payment is paid; its order is still open,
    so it pays the order."""
    payments.handle_notification("fakepay", notify_params(trade_status="TRADE_CLOSED"))
    result = payments.handle_notification("fakepay", notify_params(trade_status="TRADE_SUCCESS"))

    assert (result.accepted, result.outcome) == (True, "paid")
    assert stored_payments()[0].payment_status == PaymentStatus.PAID
    assert [e.name for e in outbox_events()] == [events.PAYMENT_SUCCEEDED]


def test_closed_after_paid_with_no_refund_here_is_accepted_and_flagged(
    payments, payment, notify_params, stored_payments, outbox_events
):
    """Alipay closes a trade once it is fully refunded; none of that refund is known here."""
    payments.handle_notification("fakepay", notify_params())
    result = payments.handle_notification("fakepay", notify_params(trade_status="TRADE_CLOSED"))

    assert (result.accepted, result.outcome, result.body) == (True, "refunded", "success")
    [row] = stored_payments()
    assert row.payment_status == PaymentStatus.PAID  # refunds recorded here make the status
    assert "only 0.00 of 123.45 is refunded" in row.flag and result.detail == row.flag
    assert [e.name for e in outbox_events()] == [events.PAYMENT_SUCCEEDED]


def test_pending_notification_is_recorded_and_changes_nothing(payments, payment, notify_params, snapshot):
    before = snapshot()
    result = payments.handle_notification("fakepay", notify_params(trade_status="WAIT_BUYER_PAY"))
    assert (result.accepted, result.outcome, result.body) == (True, "recorded", "success")
    assert result.payment.payment_status == PaymentStatus.UNPAID
    assert snapshot() == before


def test_concurrent_copies_of_one_notification_make_one_event(
    db, payments, payment, notify_params, race, stored_payments, outbox_events, after_commit_calls
):
    results = race(8, lambda i: payments.handle_notification("fakepay", notify_params()))

    assert all(result.accepted and result.body == "success" for result in results)
    assert sorted(result.outcome for result in results) == ["duplicate"] * 7 + ["paid"]
    assert [e.name for e in outbox_events()] == [events.PAYMENT_SUCCEEDED]
    assert stored_payments()[0].payment_status == PaymentStatus.PAID
    assert after_commit_calls == [tuple(db.tables.outbox)]  # the one event's id: sent at once


def test_losing_the_compare_and_set_to_another_worker_is_a_duplicate(
    db, registry, clock, payment, notify_params, stored_payments, outbox_events
):
    """With a real database two workers can both see UNPAID; only the one whose move wins writes."""

    def uow_that_loses_the_race():
        uow = db.unit_of_work()
        own_move = uow.payments._move  # the compare-and-set, after the move was checked

        def move(payment_id, from_status, to_status, given):
            with db.unit_of_work() as rival:  # another worker commits first
                assert rival.payments.move(payment_id, from_status, to_status, trade_no="RIVAL")
                rival.commit()
            return own_move(payment_id, from_status, to_status, given)

        uow.payments._move = move
        return uow

    calls = []
    service = PaymentService(
        relayed(uow_that_loses_the_race, lambda *ids: calls.append(ids)), registry, clock=clock
    )

    result = service.handle_notification("fakepay", notify_params(trade_no="MINE"))

    assert (result.accepted, result.outcome, result.body) == (True, "duplicate", "success")
    assert outbox_events() == []  # the loser writes no event (the winner wrote its own)
    assert stored_payments()[0].trade_no == "RIVAL"
    assert calls == []


def _aborting(unit_of_work, times):
    """Units of work whose first ``times`` commits the database aborts, as it does a deadlock's
    victim (``TransactionConflict``: nothing of the transaction kept)."""
    left = [times]

    def make():
        uow = unit_of_work()
        commit = uow.commit

        def aborted():
            if left[0]:
                left[0] -= 1
                raise TransactionConflict("(1213, 'Deadlock found when trying to get lock')")
            commit()

        uow.commit = aborted
        return uow

    return make


def test_a_notification_whose_transaction_is_aborted_twice_is_run_again_and_recorded_once(
    db, registry, clock, payment, notify_params, stored_payments, outbox_events
):
    payments = PaymentService(_aborting(db.unit_of_work, 2), registry, clock=clock)

    result = payments.handle_notification("fakepay", notify_params(trade_no="T-0001"))

    assert (result.outcome, result.body) == ("paid", "success")
    assert [row.payment_status for row in stored_payments()] == [PaymentStatus.PAID]
    assert [event.name for event in outbox_events()] == [events.PAYMENT_SUCCEEDED]
    assert [(r.accepted, r.outcome) for r in db.tables.notifications.values()] == [(True, "paid")]


def test_a_third_abort_is_left_to_the_provider_s_retry_with_nothing_recorded(
    db, registry, clock, payment, notify_params, stored_payments, outbox_events
):
    payments = PaymentService(_aborting(db.unit_of_work, CONFLICT_ATTEMPTS), registry, clock=clock)

    with pytest.raises(TransactionConflict):  # the web side answers it 500: the provider sends it again
        payments.handle_notification("fakepay", notify_params(trade_no="T-0001"))

    assert [row.payment_status for row in stored_payments()] == [PaymentStatus.UNPAID]
    assert outbox_events() == [] and db.tables.notifications == {}
