"""Reconciliation: payments still unpaid are asked about on the provider's series, and the answer
takes the notification's path."""

from datetime import timedelta
from decimal import Decimal

import pytest

from gmall_payment.core import events
from gmall_payment.core.errors import NotSupported, ProviderError, TradeNotFound
from gmall_payment.core.model import Notification, OrderStatus, PaymentStatus, TradeStatus
from gmall_payment.core.payments import PaymentService
from gmall_payment.core.reconciliation import Reconciliation
from gmall_payment.ports.plugins import ProviderRegistry

GRACE = timedelta(minutes=5)
SERIES = (60.0, 600.0, 3600.0)


@pytest.fixture
def asked(provider_class):
    """A provider whose query answers ``asked.answer`` (a Notification, or an error to raise)."""

    class Asked(provider_class):
        query_schedule = SERIES

        def __init__(self):
            super().__init__("fakepay")
            self.answer = None
            self.queries = []

        def query(self, payment):
            self.queries.append(payment.out_trade_no)
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer

    return Asked()


@pytest.fixture
def service(relayed_uow, asked, clock):
    return PaymentService(relayed_uow, ProviderRegistry([asked]), clock=clock, query_grace=GRACE)


@pytest.fixture
def reconciliation(db, asked, service, clock):
    return Reconciliation(db.unit_of_work, ProviderRegistry([asked]), service, clock=clock)


@pytest.fixture
def payment(service, make_order, clock):
    started = service.start(make_order(), "fakepay")
    clock.now = started.create_time
    return started


def answer(status, amount="123.45", trade_no="2024111122001400001"):
    return Notification(
        out_trade_no="202411110001",
        total_amount=Decimal(amount),
        status=status,
        trade_no=trade_no,
        raw=f'{{"trade_status": "{status.value}"}}',
    )


def log(db):
    with db.lock:
        return sorted(db.tables.notifications.values(), key=lambda r: r.id)


def stored(db, payment):
    return db.tables.payments[payment.id]


def test_a_payment_is_first_asked_about_after_the_grace_period(reconciliation, payment, asked, clock):
    asked.answer = answer(TradeStatus.PENDING)
    assert payment.next_query_time == payment.create_time + GRACE

    clock.now = payment.create_time + GRACE - timedelta(seconds=2)
    assert reconciliation.run() == [] and asked.queries == []
    clock.now = payment.create_time + GRACE
    assert [r.outcome for r in reconciliation.run()] == ["recorded"]
    assert asked.queries == ["202411110001"]


def test_a_paid_answer_is_the_notification_a_lost_notify_would_have_been(
    db, reconciliation, payment, asked, clock, outbox_events, after_commit_calls, payments, notify_params
):
    asked.answer = answer(TradeStatus.PAID)
    clock.now += GRACE

    [result] = reconciliation.run()

    assert (result.outcome, result.answer, result.payment.payment_status) == (
        "paid",
        TradeStatus.PAID,
        PaymentStatus.PAID,
    )
    row = stored(db, payment)
    assert (row.payment_status, row.trade_no) == (PaymentStatus.PAID, "2024111122001400001")
    assert outbox_events() == [
        events.payment_succeeded("202411110001", "fakepay", "2024111122001400001", Decimal("123.45"))
    ]
    assert after_commit_calls == [tuple(db.tables.outbox)]  # sent at once, as after a notify
    [entry] = log(db)
    assert (entry.source, entry.outcome, entry.verified, entry.accepted) == ("query", "paid", True, True)
    assert entry.raw == '{"trade_status": "paid"}'
    # The notify, late after all, is a duplicate.
    late = payments.handle_notification("fakepay", notify_params())
    assert (late.accepted, late.outcome) == (True, "duplicate")
    assert len(outbox_events()) == 1


class Fixed:
    """A clock that stays where it is put."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def test_queries_follow_the_providers_series_then_stop(db, service, payment, asked):
    asked.answer = answer(TradeStatus.PENDING)
    clock = Fixed(payment.create_time + GRACE)
    reconciliation = Reconciliation(db.unit_of_work, ProviderRegistry([asked]), service, clock=clock)
    waits = []
    while True:
        assert [r.outcome for r in reconciliation.run()] == ["recorded"]
        row = stored(db, payment)
        if row.next_query_time is None:
            break
        waits.append((row.next_query_time - clock.now).total_seconds())
        clock.now = row.next_query_time - timedelta(microseconds=1)
        assert reconciliation.run() == []  # not yet
        clock.now = row.next_query_time

    assert tuple(waits) == SERIES
    assert len(asked.queries) == stored(db, payment).query_attempts == len(SERIES) + 1
    clock.now += timedelta(days=30)
    assert reconciliation.run() == []
    assert len(asked.queries) == len(SERIES) + 1
    assert [e.outcome for e in log(db)] == ["recorded"] * (len(SERIES) + 1)


def test_a_trade_the_provider_does_not_know_was_never_started(
    db, reconciliation, payment, asked, clock, outbox_events
):
    asked.answer = TradeNotFound("交易不存在", code="40004", sub_code="ACQ.TRADE_NOT_EXIST")
    clock.now += GRACE

    [result] = reconciliation.run()

    assert result.outcome == "not_started"
    row = stored(db, payment)
    assert row.payment_status == PaymentStatus.UNPAID
    assert row.next_query_time is not None  # the shopper may still start: asked again later
    assert db.tables.orders["202411110001"].status == OrderStatus.AWAITING_PAYMENT
    [entry] = log(db)
    assert (entry.source, entry.outcome, entry.accepted) == ("query", "not_started", True)
    assert "ACQ.TRADE_NOT_EXIST" in entry.detail
    assert outbox_events() == []


def test_a_failed_query_is_logged_and_asked_again(db, reconciliation, payment, asked, clock):
    asked.answer = ProviderError("Alipay gateway call failed: timed out")
    clock.now += GRACE

    [result] = reconciliation.run()

    assert result.outcome == "query_failed"
    row = stored(db, payment)
    assert (row.payment_status, row.query_attempts) == (PaymentStatus.UNPAID, 1)
    assert clock.now < row.next_query_time <= clock.now + timedelta(seconds=SERIES[0])
    [entry] = log(db)
    assert (entry.outcome, entry.accepted, entry.detail) == (
        "query_failed",
        False,
        "Alipay gateway call failed: timed out",
    )


def test_a_provider_that_cannot_be_asked_is_asked_once(db, reconciliation, payment, asked, clock):
    asked.answer = NotSupported("fakepay cannot query trades")
    clock.now += GRACE
    assert [r.outcome for r in reconciliation.run()] == ["unsupported"]
    assert stored(db, payment).next_query_time is None
    clock.now += timedelta(days=1)
    assert reconciliation.run() == [] and len(asked.queries) == 1


@pytest.mark.parametrize("status", [OrderStatus.CLOSED, OrderStatus.INVALID])
def test_no_more_queries_once_the_order_is_closed(db, reconciliation, payment, asked, clock, status):
    db.tables.orders["202411110001"].status = status
    asked.answer = answer(TradeStatus.PENDING)
    clock.now += GRACE

    [result] = reconciliation.run()

    assert (result.outcome, asked.queries) == ("stopped", [])
    assert status.name in result.detail
    assert stored(db, payment).next_query_time is None and log(db) == []


def test_a_closed_answer_closes_and_a_wrong_amount_is_refused(
    db, reconciliation, payment, asked, clock, make_order, service
):
    asked.answer = answer(TradeStatus.PAID, amount="0.01")
    clock.now += GRACE
    [refused] = reconciliation.run()
    assert refused.outcome == "amount_mismatch"
    assert stored(db, payment).payment_status == PaymentStatus.UNPAID
    assert (log(db)[-1].source, log(db)[-1].accepted) == ("query", False)

    asked.answer = answer(TradeStatus.CLOSED)
    clock.now = stored(db, payment).next_query_time
    assert [r.outcome for r in reconciliation.run()] == ["closed"]
    assert stored(db, payment).payment_status == PaymentStatus.CLOSED


def test_workers_racing_ask_once(db, reconciliation, payment, asked, clock, race):
    asked.answer = answer(TradeStatus.PAID)
    clock.now += GRACE
    due = reconciliation.due()

    results = race(4, lambda i: reconciliation.reconcile(due[0]))

    assert sorted(r is None for r in results) == [False, True, True, True]
    assert asked.queries == ["202411110001"]


def test_a_dry_run_asks_and_changes_nothing(db, reconciliation, payment, asked, clock, outbox_events):
    asked.answer = answer(TradeStatus.PAID)
    clock.now += GRACE
    before = stored(db, payment).query_attempts, stored(db, payment).next_query_time

    [result] = reconciliation.preview()

    assert (result.outcome, result.answer) == ("paid", TradeStatus.PAID)
    assert "2024111122001400001" in result.detail
    row = stored(db, payment)
    assert (row.payment_status, (row.query_attempts, row.next_query_time)) == (PaymentStatus.UNPAID, before)
    assert log(db) == [] and outbox_events() == []
