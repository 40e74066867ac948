"""The in-process unit of work: a transaction over dictionaries that leaves no trace unless committed."""

import copy
from datetime import datetime
from decimal import Decimal

import pytest

from gmall_payment.core import events
from gmall_payment.core.model import LockStatus, OrderStatus, Payment, PaymentStatus

NOW = datetime(2024, 11, 11, 12, 0, 0)


@pytest.fixture
def arranged(db, make_order):
    """An order with locks, an unpaid payment, one unsent event: something of every kind to change."""
    make_order("ORD", locks=((10, 2), (20, 3)))
    with db.unit_of_work() as uow:
        uow.payments.add_once(Payment("ORD", "fakepay", Decimal("123.45"), "s", NOW))
        uow.outbox.add(events.order_paid("EARLIER"))
        uow.commit()
    return db


def change_everything(uow):
    """One change of every kind the stores offer; asserts each took effect inside the unit of work."""
    [payment] = uow.payments.for_order("ORD")
    assert uow.payments.move(
        payment.id,
        PaymentStatus.UNPAID,
        PaymentStatus.PAID,
        trade_no="T",
        callback_time=NOW,
        callback_content="{}",
    )
    added = uow.payments.add_once(Payment("ORD", "otherpay", Decimal("123.45"), "s", NOW))
    assert added.id is not None
    assert uow.orders.move("ORD", OrderStatus.AWAITING_PAYMENT, OrderStatus.AWAITING_SHIPMENT)
    for lock in uow.stock.locks_for("ORD"):
        assert uow.stock.move_lock(lock.id, LockStatus.LOCKED, LockStatus.DEDUCTED)
        uow.stock.deduct(lock.sku_id, lock.quantity)
    assert uow.points.claim("ORD", 1, 10, 20)
    uow.points.credit(1, 10, 20)
    uow.outbox.add(events.order_paid("ORD"))
    uow.outbox.mark_sent([m.id for m in uow.outbox.unsent(100)], NOW)
    assert uow.outbox.unsent(100) == []
    assert uow.orders.get("ORD").status == OrderStatus.AWAITING_SHIPMENT
    assert uow.payments.find("ORD", "fakepay").payment_status == PaymentStatus.PAID


def test_rollback_without_commit_restores_every_kind_of_change(arranged):
    db = arranged
    before = copy.deepcopy(db.tables)

    with db.unit_of_work() as uow:
        change_everything(uow)
        assert db.tables != before  # the changes were really made...

    assert db.tables == before  # ...and undone


def test_an_exception_rolls_back(arranged):
    db = arranged
    before = copy.deepcopy(db.tables)
    with pytest.raises(RuntimeError), db.unit_of_work() as uow:
        change_everything(uow)
        raise RuntimeError("crash before commit")
    assert db.tables == before


def test_commit_keeps_every_change(arranged):
    db = arranged
    with db.unit_of_work() as uow:
        change_everything(uow)
        uow.commit()
    assert db.tables.orders["ORD"].status == OrderStatus.AWAITING_SHIPMENT
    assert [p.payment_type for p in db.tables.payments.values()] == ["fakepay", "otherpay"]
    assert (db.tables.skus[10].stock, db.tables.skus[10].stock_locked, db.tables.skus[10].sales) == (98, 0, 2)
    assert set(db.tables.ledger) == {("ORD", "award")}
    assert (db.tables.members[1].integration, db.tables.members[1].growth) == (10, 20)
    assert all(sent is not None for _, sent, _ in db.tables.outbox.values())


def test_rollback_after_commit_undoes_only_later_changes(arranged):
    db = arranged
    with db.unit_of_work() as uow:
        [payment] = uow.payments.for_order("ORD")
        assert uow.orders.move("ORD", OrderStatus.AWAITING_PAYMENT, OrderStatus.AWAITING_SHIPMENT)
        assert uow.payments.move(payment.id, PaymentStatus.UNPAID, PaymentStatus.PAID)
        uow.commit()
        assert uow.payments.move(payment.id, PaymentStatus.PAID, PaymentStatus.REFUNDED)
    assert db.tables.orders["ORD"].status == OrderStatus.AWAITING_SHIPMENT
    assert db.tables.payments[payment.id].payment_status == PaymentStatus.PAID


def test_values_read_are_copies(arranged):
    db = arranged
    with db.unit_of_work() as uow:
        order = uow.orders.get("ORD")
        order.status = OrderStatus.CLOSED
        payment = uow.payments.find("ORD", "fakepay")
        payment.payment_status = PaymentStatus.PAID
        uow.commit()
    assert db.tables.orders["ORD"].status == OrderStatus.AWAITING_PAYMENT
    assert [p.payment_status for p in db.tables.payments.values()] == [PaymentStatus.UNPAID]


def test_compare_and_set_refuses_a_stale_from_status(arranged):
    db = arranged
    with db.unit_of_work() as uow:
        [payment] = uow.payments.for_order("ORD")
        assert not uow.payments.move(payment.id, PaymentStatus.CLOSED, PaymentStatus.PAID)
        assert not uow.payments.move(payment.id, PaymentStatus.PAID, PaymentStatus.REFUNDED)
        assert uow.orders.move("ORD", OrderStatus.AWAITING_PAYMENT, OrderStatus.CLOSED)
        assert not uow.orders.move("ORD", OrderStatus.AWAITING_PAYMENT, OrderStatus.AWAITING_SHIPMENT)
        assert not uow.orders.move("NOPE", OrderStatus.AWAITING_PAYMENT, OrderStatus.AWAITING_SHIPMENT)
        lock = uow.stock.locks_for("ORD")[0]
        assert uow.stock.move_lock(lock.id, LockStatus.LOCKED, LockStatus.DEDUCTED)
        assert not uow.stock.move_lock(lock.id, LockStatus.LOCKED, LockStatus.RELEASED)
        assert uow.points.claim("ORD", 1, 1, 1)
        assert not uow.points.claim("ORD", 1, 1, 1)


def test_a_rolled_back_insert_leaves_no_row_behind(db):
    """Regression: the undo log used to deep-copy its "missing" sentinel, so rollback stored junk."""
    with db.unit_of_work() as uow:
        uow.payments.add_once(Payment("ORD", "fakepay", Decimal("1.00"), "s", NOW))
        uow.outbox.add(events.order_paid("ORD"))
    assert db.tables.payments == {} and db.tables.outbox == {}
    with db.unit_of_work() as uow:
        assert uow.payments.find("ORD", "fakepay") is None
        assert uow.outbox.unsent(10) == []


def test_records_returned_by_the_arrange_helpers_see_a_rollback(db, make_order):
    """``add_sku``/``add_member`` hand back the stored records for tests to inspect."""
    sku = db.tables.skus[10]
    member = db.tables.members[1]
    make_order("ORD", locks=((10, 2),))
    with db.unit_of_work() as uow:
        uow.stock.deduct(10, 2)
        uow.points.credit(1, 5, 5)
    assert (sku.stock, sku.stock_locked, sku.sales) == (100, 2, 0)
    assert (member.integration, member.growth) == (0, 0)
    assert db.tables.skus[10] is sku
