"""Order expiry: unpaid after the timeout, an order is closed with its trades; money arriving later goes back."""

from datetime import timedelta
from decimal import Decimal

import pytest

from gmall_payment.core import events
from gmall_payment.core.closing import OrderClosing
from gmall_payment.core.errors import NotSupported, OrderNotFound, ProviderError, TradeNotFound
from gmall_payment.core.expiry import OrderExpiry
from gmall_payment.core.model import LockStatus, Notification, OrderStatus, PaymentStatus, TradeStatus
from gmall_payment.core.reconciliation import Reconciliation
from gmall_payment.ports.plugins import ProviderRegistry

SN = "202411110001"
TIMEOUT = timedelta(minutes=30)


@pytest.fixture
def provider(refunding):
    """Refunds like Alipay; ``query`` answers ``provider.answer``, ``close`` raises ``provider.close_error``."""

    class Trades(refunding):
        def __init__(self):
            super().__init__("fakepay")
            self.answer = TradeNotFound("交易不存在", code="40004", sub_code="ACQ.TRADE_NOT_EXIST")
            self.close_error = None
            self.closed = []

        def query(self, payment):
            if isinstance(self.answer, Exception):
                raise self.answer
            return Notification(
                payment.out_trade_no,
                payment.total_amount,
                self.answer,
                trade_no="T-1",
                raw=f'{{"trade_status": "{self.answer.value}"}}',
            )

        def close(self, payment):
            if self.close_error is not None:
                raise self.close_error
            self.closed.append(payment.out_trade_no)

    return Trades()


@pytest.fixture
def registry(provider):
    return ProviderRegistry([provider])


@pytest.fixture
def closing(relayed_uow):
    return OrderClosing(relayed_uow)


@pytest.fixture
def expiry(db, closing, payments, registry, clock):
    reconciliation = Reconciliation(db.unit_of_work, registry, payments, clock=clock)
    return OrderExpiry(
        db.unit_of_work, closing, reconciliation, payments, registry, clock=clock, timeout=TIMEOUT
    )


@pytest.fixture
def order(db, make_order, clock):
    """Order SN placed at the clock's start, awaiting payment, holding 2 + 3 units."""
    make_order(SN)
    db.tables.orders[SN].create_time = clock.now
    return db.tables.orders[SN]


def trace(db, order_sn=SN):
    with db.unit_of_work() as uow:
        return [(e.step, e.outcome, e.detail) for e in uow.trace.for_order(order_sn)]


def stock(db):
    return {sku: (db.tables.skus[sku].stock, db.tables.skus[sku].stock_locked) for sku in (10, 20)}


# closing


def test_close_an_order_once_and_release_its_locks(db, closing, order, outbox_events, after_commit_calls):
    assert stock(db) == {10: (100, 2), 20: (50, 3)}

    assert closing.close(SN, "expired") is True
    assert closing.close(SN, "expired") is False

    assert order.status == OrderStatus.CLOSED
    assert {lock.status for lock in db.tables.locks.values()} == {LockStatus.RELEASED}
    assert stock(db) == {10: (100, 0), 20: (50, 0)}
    assert outbox_events() == [events.Event(events.ORDER_CLOSED, SN, {"reason": "expired"})]
    assert after_commit_calls == [tuple(db.tables.outbox)]
    assert trace(db) == [("close_order", "done", "status 0 -> 4 (expired); released: sku 10 +2, sku 20 +3")]
    with pytest.raises(OrderNotFound):
        closing.close("nope", "expired")


@pytest.mark.parametrize("status", [OrderStatus.AWAITING_SHIPMENT, OrderStatus.CLOSED, OrderStatus.INVALID])
def test_only_an_order_awaiting_payment_closes(db, closing, order, outbox_events, status):
    order.status = status
    assert closing.close(SN, "expired") is False
    assert order.status == status and outbox_events() == [] and stock(db) == {10: (100, 2), 20: (50, 3)}


def test_racing_closes_close_once(db, closing, order, race, outbox_events):
    assert sorted(race(8, lambda i: closing.close(SN, "expired"))) == [False] * 7 + [True]
    assert stock(db) == {10: (100, 0), 20: (50, 0)} and len(outbox_events()) == 1


# the periodic pass


def test_orders_are_due_after_the_timeout(db, expiry, order, make_order, clock):
    make_order("PAID", status=OrderStatus.AWAITING_SHIPMENT, locks=())
    db.tables.orders["PAID"].create_time = clock.now - timedelta(days=1)
    clock.now = order.create_time + TIMEOUT - timedelta(seconds=2)
    assert expiry.due() == []
    clock.now = order.create_time + TIMEOUT + timedelta(seconds=1)
    assert expiry.due() == [SN]
    assert [(r.order_sn, r.outcome) for r in expiry.run(dry_run=True)] == [(SN, "due")]
    assert order.status == OrderStatus.AWAITING_PAYMENT


def test_an_unpaid_order_expires_after_a_last_question_to_its_provider(
    db, expiry, order, payments, provider, clock, outbox_events
):
    payment = payments.start(SN, "fakepay")
    provider.answer = TradeStatus.PENDING
    clock.now += TIMEOUT + timedelta(minutes=1)

    [result] = expiry.run()

    assert (result.order_sn, result.outcome) == (SN, "closed")
    assert order.status == OrderStatus.CLOSED and stock(db) == {10: (100, 0), 20: (50, 0)}
    assert [e.name for e in outbox_events()] == [events.ORDER_CLOSED]
    assert [(n.source, n.outcome) for n in db.tables.notifications.values()] == [("query", "recorded")]
    assert db.tables.payments[payment.id].payment_status == PaymentStatus.UNPAID  # its trade: close_trades


def test_money_that_came_in_at_the_last_minute_pays_the_order(
    db, expiry, order, payments, provider, clock, outbox_events
):
    """Paid just before the deadline, the notify lost: the last query finds it; the order is paid."""
    payment = payments.start(SN, "fakepay")
    provider.answer = TradeStatus.PAID
    clock.now += TIMEOUT + timedelta(minutes=1)

    [result] = expiry.run()

    assert result.outcome == "paid" and order.status == OrderStatus.AWAITING_PAYMENT
    assert db.tables.payments[payment.id].payment_status == PaymentStatus.PAID
    assert [e.name for e in outbox_events()] == [events.PAYMENT_SUCCEEDED]  # fulfilment marks it paid


# closing the trades, the order.closed step


@pytest.fixture
def closed(db, expiry, order, payments, clock):
    """Order SN expired with a payment of 123.45 started with fakepay and still unpaid."""
    payment = payments.start(SN, "fakepay")
    clock.now += TIMEOUT + timedelta(minutes=1)
    assert expiry.run()[0].outcome == "closed"
    return payment


def test_the_trades_of_a_closed_order_are_closed_at_the_provider(db, expiry, closed, provider):
    assert expiry.close_trades(SN) is True

    assert provider.closed == [SN]
    assert db.tables.payments[closed.id].payment_status == PaymentStatus.CLOSED
    assert [(n.source, n.outcome) for n in db.tables.notifications.values()][-1] == ("close", "closed")
    assert trace(db)[-1][:2] == ("close_trades", "done")
    assert expiry.close_trades(SN) is False and provider.closed == [SN]  # nothing left open


@pytest.mark.parametrize(
    "error",
    [
        TradeNotFound("交易不存在", code="40004", sub_code="ACQ.TRADE_NOT_EXIST"),
        NotSupported("fakepay cannot close trades"),
    ],
)
def test_a_trade_never_opened_or_that_cannot_be_closed_is_closed_here(db, expiry, closed, provider, error):
    provider.close_error = error
    assert expiry.close_trades(SN) is True
    assert db.tables.payments[closed.id].payment_status == PaymentStatus.CLOSED
    assert "closed here" in trace(db)[-1][2]


def test_a_provider_that_will_not_close_was_paid_and_the_money_goes_back(
    db, expiry, closed, provider, refunds, outbox_events
):
    provider.close_error = ProviderError("交易状态不合法", code="40004", sub_code="ACQ.TRADE_STATUS_ERROR")
    provider.answer = TradeStatus.PAID

    expiry.close_trades(SN)

    payment = db.tables.payments[closed.id]
    assert (payment.payment_status, payment.refund_reason) == (PaymentStatus.PAID, "paid_after_close")
    assert [e.name for e in outbox_events()] == [events.ORDER_CLOSED, events.REFUND_DUE]
    assert "would not close it" in trace(db)[-1][2]
    assert refunds.auto_refund(SN) is True
    assert payment.payment_status == PaymentStatus.REFUNDED and provider.refunded(SN) == Decimal("123.45")


def test_a_provider_that_does_not_answer_is_asked_again(db, expiry, closed, provider):
    provider.close_error = ProviderError("Alipay gateway call failed: timed out")
    with pytest.raises(ProviderError):  # the step is retried
        expiry.close_trades(SN)
    assert db.tables.payments[closed.id].payment_status == PaymentStatus.UNPAID


def test_an_order_that_is_not_closed_keeps_its_trades(db, expiry, order, payments, provider):
    payments.start(SN, "fakepay")
    assert expiry.close_trades(SN) is False
    assert provider.closed == [] and trace(db)[-1][:2] == ("close_trades", "skipped")


def test_expiry_while_a_payment_is_in_flight_then_its_notify(
    db, expiry, closed, provider, payments, refunds, fulfilment, notify_params, outbox_events
):
    """The order expired while the shopper paid; the trade could not be closed here (not opened
    yet when asked); then the shopper's payment is notified: the order stays closed, the money
    goes back, the released stock stays released."""
    provider.close_error = TradeNotFound("交易不存在", code="40004", sub_code="ACQ.TRADE_NOT_EXIST")
    expiry.close_trades(SN)

    result = payments.handle_notification("fakepay", notify_params())

    assert (result.accepted, result.outcome) == (True, "paid_after_close")
    assert refunds.auto_refund(SN) is True
    assert fulfilment.mark_order_paid(SN) is False
    payment = db.tables.payments[closed.id]
    assert (payment.payment_status, payment.refunded) == (PaymentStatus.REFUNDED, Decimal("123.45"))
    assert db.tables.orders[SN].status == OrderStatus.CLOSED
    assert stock(db) == {10: (100, 0), 20: (50, 0)}
    assert provider.refunded(SN) == Decimal("123.45")
    assert events.PAYMENT_SUCCEEDED not in [e.name for e in outbox_events()]


# what an operator must look at: never only in a trace


def test_an_order_closed_while_its_payments_outcome_is_unknown_flags_the_payment(
    db, expiry, order, payments, provider, clock
):
    """The last query fails (the provider does not answer): the order closes at its expiry, and
    the payment is flagged, since the shopper may have paid."""
    payment = payments.start(SN, "fakepay")
    provider.answer = ProviderError("Alipay gateway call failed: timed out")
    clock.now += TIMEOUT + timedelta(minutes=1)

    [result] = expiry.run()

    assert result.outcome == "closed" and order.status == OrderStatus.CLOSED
    flag = db.tables.payments[payment.id].flag
    assert flag and "unknown" in flag and "timed out" in flag


def test_a_trade_that_could_not_be_closed_is_flagged_then_unflagged_once_closed(db, expiry, closed, provider):
    provider.close_error = ProviderError("Alipay gateway call failed: timed out")
    with pytest.raises(ProviderError):  # the step is retried...
        expiry.close_trades(SN)
    flag = db.tables.payments[closed.id].flag
    assert flag and "could not close" in flag and "timed out" in flag  # ...and an operator sees it now

    provider.close_error = None
    assert expiry.close_trades(SN) is True
    assert db.tables.payments[closed.id].flag is None  # closed after all: nothing left to look at


def test_a_trade_that_would_not_close_and_cannot_be_asked_about_is_flagged(db, expiry, closed, provider):
    provider.close_error = ProviderError("交易状态不合法", code="40004", sub_code="ACQ.TRADE_STATUS_ERROR")
    provider.answer = ProviderError("Alipay gateway call failed: timed out")
    with pytest.raises(ProviderError):
        expiry.close_trades(SN)
    assert "could not close" in db.tables.payments[closed.id].flag


def test_an_operators_flag_is_not_cleared_by_a_close(db, expiry, closed, provider, payments):
    with db.unit_of_work() as uow:
        uow.payments.set_flag(closed.id, "operator: call the shopper")
        uow.commit()
    assert expiry.close_trades(SN) is True
    assert db.tables.payments[closed.id].flag == "operator: call the shopper"


def test_the_unknown_outcome_flag_goes_once_the_provider_closes_the_trade(
    db, expiry, order, payments, provider, clock
):
    payment = payments.start(SN, "fakepay")
    provider.answer = ProviderError("Alipay gateway call failed: timed out")
    clock.now += TIMEOUT + timedelta(minutes=1)
    expiry.run()
    assert db.tables.payments[payment.id].flag

    assert expiry.close_trades(SN) is True  # closed unpaid at the provider: the shopper did not pay

    assert db.tables.payments[payment.id].flag is None
