"""Bill runs: a provider's daily bill against our payments and refunds, each rule once, and a
second run that changes nothing."""

import json
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from gmall_payment.core import bills, events
from gmall_payment.core.bill_runs import BillReconciliation
from gmall_payment.core.bills import REFUND, TRADE, Bill, BillLine
from gmall_payment.core.errors import ProviderError
from gmall_payment.core.model import PaymentStatus, RefundReason, RefundStatus
from gmall_payment.ports.plugins import ProviderRegistry

DAY = date(2024, 11, 11)
STARTS = datetime(2024, 11, 11)
PAID_AT = datetime(2024, 11, 11, 9, 30, 0)
TRADE_NO = "2024111122001400001"


@pytest.fixture
def billed(refunding):
    """A refunding fake provider whose bill is ``billed.lines`` (or ``billed.error``, raised)."""

    class Billed(refunding):
        def __init__(self):
            super().__init__("fakepay")
            self.lines, self.error, self.asked = [], None, []

        def daily_bill(self, day):
            self.asked.append(day)
            if self.error is not None:
                raise self.error
            return Bill(self.name, day, STARTS, STARTS + timedelta(days=1), tuple(self.lines))

    return Billed()


@pytest.fixture
def registry(billed, other):
    return ProviderRegistry([billed, other])


@pytest.fixture
def bill_runs(relayed_uow, registry, payments, refunds, clock):
    payments.refund_notices = refunds.apply_notice
    return BillReconciliation(relayed_uow, registry, payments, refunds, clock=clock)


@pytest.fixture
def payment(payments, make_order):
    return payments.start(make_order(), "fakepay")


def trade(amount="123.45", out_trade_no="202411110001", trade_no=TRADE_NO):
    return BillLine(TRADE, out_trade_no, trade_no, Decimal(amount), PAID_AT, raw='{"业务类型": "交易"}')


def refund(amount, request_no):
    return BillLine(
        REFUND, "202411110001", TRADE_NO, Decimal(amount), PAID_AT + timedelta(hours=1), request_no
    )


def paid_by_notify(payments, notify_params):
    result = payments.handle_notification("fakepay", notify_params())
    assert result.outcome == "paid"
    return result.payment


def state(db):
    """Everything a second run must leave as it was."""
    with db.lock:
        tables = db.tables
        return (
            [
                (p.payment_status, p.flag, p.refunded, p.refund_reserved, p.callback_time)
                for p in tables.payments.values()
            ],
            sorted((r.out_request_no, r.status, r.amount) for r in tables.refunds.values()),
            len(tables.outbox),
            len(tables.notifications),
        )


def test_a_lost_notify_is_repaired_by_the_bill_as_a_query_answer_once(
    bill_runs, billed, payment, db, outbox_events, stored_payments
):
    billed.lines = [trade()]

    run = bill_runs.run("fakepay", DAY)

    [repaired] = stored_payments()
    assert (repaired.payment_status, repaired.trade_no) == (PaymentStatus.PAID, TRADE_NO)
    assert repaired.callback_time == PAID_AT  # in the bill of the day it was paid, not of today's run
    assert [e.name for e in outbox_events()] == [events.PAYMENT_SUCCEEDED]
    [heard] = db.tables.notifications.values()
    assert (heard.source, heard.outcome, heard.accepted, heard.raw) == ("bill", "paid", True, trade().raw)
    assert (run.outcome, run.trade_lines, run.matched, run.repaired) == ("done", 1, 0, 1)
    assert run.differences == (
        "bill 2024-11-11: paid at fakepay (trade 2024111122001400001), unpaid here: paid",
    )
    before = state(db)

    again = bill_runs.run("fakepay", DAY)

    assert state(db) == before
    assert (again.matched, again.repaired, again.differences) == (1, 0, ())
    assert [run.id for run in bill_runs.runs()] == [again.id, run.id]


def test_a_refund_unknown_here_is_recorded_and_flagged_and_not_again(
    bill_runs, billed, payments, payment, notify_params, db, stored_payments
):
    paid_by_notify(payments, notify_params)
    billed.lines = [trade(), refund("23.45", "R-OUTSIDE")]

    run = bill_runs.run("fakepay", DAY)

    [held] = stored_payments()
    [recorded] = db.tables.refunds.values()
    assert (recorded.out_request_no, recorded.amount, recorded.status, recorded.reason) == (
        "R-OUTSIDE",
        Decimal("23.45"),
        RefundStatus.SUCCEEDED,
        RefundReason.OUTSIDE,
    )
    assert (held.payment_status, held.refunded, held.refundable) == (
        PaymentStatus.PARTIALLY_REFUNDED,
        Decimal("23.45"),
        Decimal("100.00"),
    )
    assert "never asked for" in held.flag and "R-OUTSIDE" in held.flag
    assert (run.matched, run.refund_lines, run.refunds_recorded) == (1, 1, 1)
    before = state(db)

    again = bill_runs.run("fakepay", DAY)

    assert state(db) == before
    assert (again.matched, again.refunds_recorded, again.differences) == (2, 0, ())


def test_a_refund_more_than_the_payment_holds_is_flagged_not_recorded(
    bill_runs, billed, payments, payment, notify_params, db, stored_payments
):
    paid_by_notify(payments, notify_params)
    billed.lines = [trade(), refund("200.00", "R-BIG")]

    run = bill_runs.run("fakepay", DAY)

    assert db.tables.refunds == {}
    [held] = stored_payments()
    assert held.payment_status == PaymentStatus.PAID and "not recorded" in held.flag
    assert run.refunds_recorded == 0 and "not recorded" in run.differences[0]


def test_a_refund_pending_here_is_completed_by_the_bill(
    bill_runs, billed, payments, payment, notify_params, refunds
):
    paid_by_notify(payments, notify_params)
    billed.failures = [(ProviderError("no answer"), True)]  # refunded there, the answer lost
    with pytest.raises(Exception, match="pending"):
        refunds.refund(payment.id, "123.45", "R-1")
    billed.lines = [trade(), refund("123.45", "R-1")]

    run = bill_runs.run("fakepay", DAY)

    [done] = refunds.refunds(payment.id)
    assert done.status == RefundStatus.SUCCEEDED
    assert run.repaired == 1 and run.differences[0].endswith("pending here: refunded")


def test_a_payment_paid_here_but_absent_from_the_bill_is_flagged(
    bill_runs, billed, payments, payment, notify_params, stored_payments, db
):
    paid_by_notify(payments, notify_params)
    with db.lock:  # its money came within the bill's day
        db.tables.payments[payment.id].callback_time = PAID_AT

    run = bill_runs.run("fakepay", DAY)

    [held] = stored_payments()
    assert held.flag == (
        "bill 2024-11-11: fakepay has no trade 202411110001 though it was paid here (123.45) that day: "
        "check it with fakepay"
    )
    assert run.differences == (held.flag,)
    before = state(db)
    bill_runs.run("fakepay", DAY)
    assert state(db) == before


@pytest.mark.parametrize("paid_at", [STARTS - timedelta(microseconds=1), STARTS + timedelta(days=1)])
def test_a_payment_paid_outside_the_bill_s_day_is_not_expected_in_it(
    bill_runs, billed, payments, payment, notify_params, stored_payments, db, paid_at
):
    paid_by_notify(payments, notify_params)
    with db.lock:
        db.tables.payments[payment.id].callback_time = paid_at

    run = bill_runs.run("fakepay", DAY)

    assert run.differences == ()
    assert stored_payments()[0].flag is None


def test_an_amount_that_differs_is_flagged_and_not_applied(bill_runs, billed, payment, stored_payments, db):
    billed.lines = [trade(amount="12.34")]

    run = bill_runs.run("fakepay", DAY)

    [held] = stored_payments()
    assert held.payment_status == PaymentStatus.UNPAID
    assert held.flag == (
        "bill 2024-11-11: fakepay took 12.34 for trade 202411110001, the payment is of 123.45: check it with fakepay"
    )
    assert db.tables.notifications == {} and run.repaired == 0


def test_a_second_trade_number_for_a_paid_payment_is_flagged(
    bill_runs, billed, payments, payment, notify_params, stored_payments
):
    paid_by_notify(payments, notify_params)
    billed.lines = [trade(trade_no="2024111122009999999")]

    bill_runs.run("fakepay", DAY)

    assert "2024111122009999999" in stored_payments()[0].flag


def test_a_flag_is_added_to_the_one_a_payment_has(bill_runs, billed, payment, payments, stored_payments):
    payments.flag(payment.id, "an operator's note")
    billed.lines = [trade(amount="12.34")]

    bill_runs.run("fakepay", DAY)
    bill_runs.run("fakepay", DAY)

    flag = stored_payments()[0].flag
    assert flag.startswith("an operator's note | bill 2024-11-11: fakepay took 12.34")
    assert flag.count("bill 2024-11-11") == 1


def test_a_line_about_no_payment_here_is_a_difference(bill_runs, billed):
    billed.lines = [trade(out_trade_no="NOT-OURS")]

    run = bill_runs.run("fakepay", DAY)

    assert run.differences == ("bill 2024-11-11: fakepay trade NOT-OURS of 123.45 is no payment here",)


def test_a_line_of_another_kind_is_a_difference_and_changes_nothing(bill_runs, billed, payment, db):
    billed.lines = [BillLine("冻结", "202411110001", TRADE_NO, Decimal("1.00"))]
    before = state(db)

    run = bill_runs.run("fakepay", DAY)

    assert run.differences == (
        "bill 2024-11-11: fakepay line of kind '冻结' about 202411110001 (1.00) is not reconciled here: "
        "check it by hand",
    )
    assert state(db) == before


def test_a_bill_that_cannot_be_had_is_a_failed_run(bill_runs, billed, payment, stored_payments):
    billed.error = ProviderError("账单不存在", code="40004", sub_code="isp.bill_not_exist")

    run = bill_runs.run("fakepay", DAY)

    assert (run.outcome, run.detail) == ("failed", "isp.bill_not_exist: 账单不存在")
    assert bill_runs.runs() == [run]
    assert stored_payments()[0].payment_status == PaymentStatus.UNPAID


def test_the_morning_job_reads_yesterday_s_bill_once_from_its_hour(bill_runs, billed, clock):
    clock.now = datetime(2024, 11, 12, 9, 59, 0)
    assert bill_runs.scheduled(10) == []
    assert billed.asked == []

    clock.now = datetime(2024, 11, 12, 10, 0, 0)
    [run] = bill_runs.scheduled(10)  # otherpay keeps no bills: skipped, nothing recorded
    assert (run.provider, run.bill_date, run.outcome) == ("fakepay", DAY, "done")

    assert bill_runs.scheduled(10) == []
    assert billed.asked == [DAY]


def test_the_morning_job_tries_again_after_a_failed_run(bill_runs, billed, clock):
    clock.now = datetime(2024, 11, 12, 10, 0, 0)
    billed.error = ProviderError("账单不存在", code="40004", sub_code="isp.bill_not_exist")
    assert [run.outcome for run in bill_runs.scheduled(10)] == ["failed"]

    billed.error = None
    assert [run.outcome for run in bill_runs.scheduled(10)] == ["done"]
    assert billed.asked == [DAY, DAY]


def test_the_stores_keep_a_run_s_differences_within_bounds(db):
    many = tuple(f"difference {n} " + "x" * 600 for n in range(40))
    run = bills.BillRun("fakepay", DAY, STARTS, STARTS, "done", differences=many, detail="y" * 900)
    with db.unit_of_work() as uow:
        kept = uow.bill_runs.add(run)
        uow.commit()

    assert len(kept.differences) == 31 and all(len(d) <= 500 for d in kept.differences)
    assert kept.differences[-1] == "... and 10 more (see the flagged payments)"
    assert len(kept.detail) == 500
    assert json.dumps(kept.differences)  # text only
