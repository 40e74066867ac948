"""OrderClosing: an unpaid order closes once, frees its stock and says so in the outbox."""

import pytest

from gmall_payment.core import events
from gmall_payment.core.closing import CLOSE_ORDER, OrderClosing
from gmall_payment.core.errors import OrderNotFound
from gmall_payment.core.model import LockStatus, OrderStatus
from gmall_payment.ports.store import relayed


@pytest.fixture
def sent():
    return []


@pytest.fixture
def closing(db, sent):
    return OrderClosing(relayed(db.unit_of_work, lambda *ids: sent.append(ids)))


def stock(db, sku_id):
    sku = db.tables.skus[sku_id]
    return sku.stock, sku.stock_locked, sku.sales


def test_an_unpaid_order_closes_once_frees_its_locks_and_writes_order_closed(
    db, closing, make_order, outbox_events, sent
):
    order_sn = make_order()
    assert (stock(db, 10), stock(db, 20)) == ((100, 2, 0), (50, 3, 0))

    assert closing.close(order_sn, "unpaid in time") is True
    assert db.tables.orders[order_sn].status is OrderStatus.CLOSED
    assert sorted(lock.status for lock in db.tables.locks.values()) == [LockStatus.RELEASED] * 2
    assert (stock(db, 10), stock(db, 20)) == ((100, 0, 0), (50, 0, 0))
    assert outbox_events() == [events.Event(events.ORDER_CLOSED, order_sn, {"reason": "unpaid in time"})]
    assert sent == [(min(db.tables.outbox),)]
    [entry] = db.tables.trace.values()
    assert (entry.step, entry.outcome) == (CLOSE_ORDER, "done") and "unpaid in time" in entry.detail

    assert closing.close(order_sn, "again") is False
    assert (stock(db, 10), len(outbox_events()), len(sent)) == ((100, 0, 0), 1, 1)


@pytest.mark.parametrize("status", [OrderStatus.AWAITING_SHIPMENT, OrderStatus.CLOSED, OrderStatus.INVALID])
def test_an_order_that_left_status_0_is_left_alone(db, closing, make_order, outbox_events, status):
    order_sn = make_order(status=status)
    assert closing.close(order_sn, "unpaid in time") is False
    assert db.tables.orders[order_sn].status is status
    assert [lock.status for lock in db.tables.locks.values()] == [LockStatus.LOCKED] * 2
    assert stock(db, 10) == (100, 2, 0) and outbox_events() == []


def test_an_unknown_order_is_refused(closing, outbox_events):
    with pytest.raises(OrderNotFound):
        closing.close("nope", "unpaid in time")
    assert outbox_events() == []


def test_racing_closes_close_once(db, closing, make_order, outbox_events, race):
    order_sn = make_order()
    assert sorted(race(8, lambda i: closing.close(order_sn, f"closer {i}"))) == [False] * 7 + [True]
    assert stock(db, 10) == (100, 0, 0) and len(outbox_events()) == 1


def test_a_failure_before_the_commit_changes_nothing(db, make_order, outbox_events, sent):
    order_sn = make_order()

    def failing_uow():
        uow = db.unit_of_work()
        uow.outbox.add = lambda event: (_ for _ in ()).throw(RuntimeError("database went away"))
        return uow

    with pytest.raises(RuntimeError):
        OrderClosing(relayed(failing_uow, lambda *ids: sent.append(ids))).close(order_sn, "unpaid in time")
    assert db.tables.orders[order_sn].status is OrderStatus.AWAITING_PAYMENT
    assert stock(db, 10) == (100, 2, 0) and stock(db, 20) == (50, 3, 0)
    assert outbox_events() == [] and sent == []
