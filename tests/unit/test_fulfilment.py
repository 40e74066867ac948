"""FulfilmentService: each step runs at least once and changes state at most once."""

import copy
import inspect

import pytest

from gmall_payment.core import events
from gmall_payment.core.errors import OrderNotFound, OrderNotPaidYet
from gmall_payment.core.events import GIVE_BACK_SECKILL_UNIT, STEPS_BY_EVENT
from gmall_payment.core.expiry import OrderExpiry
from gmall_payment.core.fulfilment import FulfilmentService
from gmall_payment.core.model import LockStatus, OrderStatus, StockLock
from gmall_payment.core.refunds import RefundService
from gmall_payment.ports.store import relayed
from gmall_payment.seckill.service import SeckillService


def order_status(db, order_sn):
    return db.tables.orders[order_sn].status


def sku_numbers(db, sku_id):
    sku = db.tables.skus[sku_id]
    return sku.stock, sku.stock_locked, sku.sales


def member_points(db, member_id):
    member = db.tables.members[member_id]
    return member.integration, member.growth


# --- mark_order_paid -------------------------------------------------------------------------


def test_mark_order_paid_moves_0_to_1_once(db, fulfilment, make_order, outbox_events):
    order_sn = make_order()

    assert fulfilment.mark_order_paid(order_sn) is True
    assert order_status(db, order_sn) == OrderStatus.AWAITING_SHIPMENT
    assert outbox_events() == [events.Event(events.ORDER_PAID, order_sn, {})]

    assert fulfilment.mark_order_paid(order_sn) is False
    assert order_status(db, order_sn) == OrderStatus.AWAITING_SHIPMENT
    assert len(outbox_events()) == 1


@pytest.mark.parametrize("status", [OrderStatus.CLOSED, OrderStatus.INVALID, OrderStatus.SHIPPED])
def test_mark_order_paid_leaves_other_statuses_alone(db, fulfilment, make_order, outbox_events, status):
    order_sn = make_order(status=status)
    assert fulfilment.mark_order_paid(order_sn) is False
    assert order_status(db, order_sn) == status
    assert outbox_events() == []


def test_mark_order_paid_of_unknown_order(fulfilment, outbox_events):
    with pytest.raises(OrderNotFound):
        fulfilment.mark_order_paid("nope")
    assert outbox_events() == []


def test_racing_mark_order_paid_moves_once(db, fulfilment, make_order, outbox_events, race):
    order_sn = make_order()
    results = race(8, lambda i: fulfilment.mark_order_paid(order_sn))
    assert sorted(results) == [False] * 7 + [True]
    assert [e.name for e in outbox_events()] == [events.ORDER_PAID]


def test_after_commit_runs_only_when_an_event_was_written(db, make_order):
    calls = []
    service = FulfilmentService(relayed(db.unit_of_work, lambda *ids: calls.append(ids)))
    order_sn = make_order()
    service.mark_order_paid(order_sn)
    service.mark_order_paid(order_sn)
    [(event_id,)] = calls
    assert db.tables.outbox[event_id][0].event == events.order_paid(order_sn)


# --- deduct_stock ----------------------------------------------------------------------------


def test_deduct_stock_ships_the_locked_units_once(db, fulfilment, make_order):
    order_sn = make_order(locks=((10, 2), (20, 3)))
    assert sku_numbers(db, 10) == (100, 2, 0)
    assert sku_numbers(db, 20) == (50, 3, 0)
    fulfilment.mark_order_paid(order_sn)

    assert fulfilment.deduct_stock(order_sn) is True
    assert sku_numbers(db, 10) == (98, 0, 2)
    assert sku_numbers(db, 20) == (47, 0, 3)
    assert {lock.status for lock in db.tables.locks.values()} == {LockStatus.DEDUCTED}

    assert fulfilment.deduct_stock(order_sn) is False
    assert sku_numbers(db, 10) == (98, 0, 2)
    assert sku_numbers(db, 20) == (47, 0, 3)


def test_deduct_stock_with_several_locks_on_one_sku_and_other_orders(db, fulfilment, make_order):
    mine = make_order("MINE", locks=((10, 1), (10, 4), (20, 2)))
    theirs = make_order("THEIRS", locks=((10, 7),))
    assert sku_numbers(db, 10) == (100, 12, 0)
    fulfilment.mark_order_paid(mine)

    assert fulfilment.deduct_stock(mine) is True

    assert sku_numbers(db, 10) == (95, 7, 5)
    assert sku_numbers(db, 20) == (48, 0, 2)
    their_locks = [lock for lock in db.tables.locks.values() if lock.order_sn == theirs]
    assert [lock.status for lock in their_locks] == [LockStatus.LOCKED]


def test_deduct_stock_skips_released_locks(db, fulfilment, make_order):
    order_sn = make_order(locks=((10, 2), (20, 3)))
    released = next(lock for lock in db.tables.locks.values() if lock.sku_id == 20)
    db.tables.locks[released.id] = StockLock(released.id, order_sn, 20, 3, LockStatus.RELEASED)
    db.tables.skus[20].stock_locked -= 3
    fulfilment.mark_order_paid(order_sn)

    assert fulfilment.deduct_stock(order_sn) is True
    assert sku_numbers(db, 10) == (98, 0, 2)
    assert sku_numbers(db, 20) == (50, 0, 0)
    assert db.tables.locks[released.id].status == LockStatus.RELEASED


def test_deduct_stock_of_an_order_without_locks(fulfilment, make_order):
    order_sn = make_order(locks=())
    fulfilment.mark_order_paid(order_sn)
    assert fulfilment.deduct_stock(order_sn) is False


@pytest.mark.parametrize("status", [OrderStatus.AWAITING_PAYMENT, OrderStatus.CLOSED])
def test_deduct_stock_before_the_order_is_paid(db, fulfilment, make_order, status):
    order_sn = make_order(status=status)
    before = copy.deepcopy(db.tables)
    with pytest.raises(OrderNotPaidYet) as error:
        fulfilment.deduct_stock(order_sn)
    assert error.value.order_sn == order_sn
    assert db.tables == before


def test_deduct_stock_of_unknown_order(fulfilment):
    with pytest.raises(OrderNotFound):
        fulfilment.deduct_stock("nope")


def test_racing_deduct_stock_deducts_once(db, fulfilment, make_order, race):
    order_sn = make_order(locks=((10, 2),))
    fulfilment.mark_order_paid(order_sn)
    results = race(8, lambda i: fulfilment.deduct_stock(order_sn))
    assert sorted(results) == [False] * 7 + [True]
    assert sku_numbers(db, 10) == (98, 0, 2)


# --- award_points ----------------------------------------------------------------------------


def test_award_points_credits_the_member_once(db, fulfilment, make_order):
    order_sn = make_order(member_id=1, integration=123, growth=45)
    fulfilment.mark_order_paid(order_sn)

    assert fulfilment.award_points(order_sn) is True
    assert member_points(db, 1) == (123, 45)
    assert member_points(db, 2) == (0, 0)
    assert (order_sn, "award") in db.tables.ledger

    assert fulfilment.award_points(order_sn) is False
    assert member_points(db, 1) == (123, 45)


def test_points_of_two_orders_add_up(db, fulfilment, make_order):
    for order_sn, integration, growth in (("P1", 10, 1), ("P2", 20, 2)):
        make_order(order_sn, member_id=2, integration=integration, growth=growth, locks=())
        fulfilment.mark_order_paid(order_sn)
        assert fulfilment.award_points(order_sn) is True
    assert member_points(db, 2) == (30, 3)


def test_award_points_before_the_order_is_paid(db, fulfilment, make_order):
    order_sn = make_order()
    before = copy.deepcopy(db.tables)
    with pytest.raises(OrderNotPaidYet):
        fulfilment.award_points(order_sn)
    assert db.tables == before


def test_racing_award_points_credits_once(db, fulfilment, make_order, race):
    order_sn = make_order(integration=100, growth=10)
    fulfilment.mark_order_paid(order_sn)
    results = race(8, lambda i: fulfilment.award_points(order_sn))
    assert sorted(results) == [False] * 7 + [True]
    assert member_points(db, 1) == (100, 10)


# --- the routing table -----------------------------------------------------------------------


def test_steps_by_event_name_service_methods_taking_the_order_number():
    assert set(STEPS_BY_EVENT) == {
        events.PAYMENT_SUCCEEDED,
        events.ORDER_PAID,
        events.REFUND_DUE,
        events.ORDER_REFUNDED,
        events.ORDER_CLOSED,
    }
    named_otherwise = {GIVE_BACK_SECKILL_UNIT: SeckillService.give_back}
    for event_name, steps in STEPS_BY_EVENT.items():
        assert steps, event_name
        for step in steps:
            [method] = (
                [named_otherwise[step]]
                if step in named_otherwise
                else [
                    getattr(service, step)
                    for service in (FulfilmentService, RefundService, OrderExpiry)
                    if hasattr(service, step)
                ]
            )
            assert inspect.isfunction(method), f"{event_name} -> {step} is not a service method"
            assert list(inspect.signature(method).parameters) == ["self", "order_sn"], step


def test_steps_by_event_drive_the_whole_fulfilment(db, fulfilment, make_order):
    order_sn = make_order(locks=((10, 2),), integration=5, growth=6)
    for step in STEPS_BY_EVENT[events.PAYMENT_SUCCEEDED]:
        getattr(fulfilment, step)(order_sn)
    for step in STEPS_BY_EVENT[events.ORDER_PAID]:
        getattr(fulfilment, step)(order_sn)
    assert order_status(db, order_sn) == OrderStatus.AWAITING_SHIPMENT
    assert sku_numbers(db, 10) == (98, 0, 2)
    assert member_points(db, 1) == (5, 6)


# --- the trace -------------------------------------------------------------------------------


def trace(db, order_sn):
    with db.unit_of_work() as uow:
        return [(entry.step, entry.outcome) for entry in uow.trace.for_order(order_sn)]


def test_each_step_traces_done_then_skipped_in_its_own_transaction(db, fulfilment, make_order):
    order_sn = make_order(locks=((10, 2),))
    for _ in range(2):
        fulfilment.mark_order_paid(order_sn)
        fulfilment.deduct_stock(order_sn)
        fulfilment.award_points(order_sn)

    assert trace(db, order_sn) == [
        ("mark_order_paid", "done"),
        ("deduct_stock", "done"),
        ("award_points", "done"),
        ("mark_order_paid", "skipped"),
        ("deduct_stock", "skipped"),
        ("award_points", "skipped"),
    ]
    with db.unit_of_work() as uow:
        details = [entry.detail for entry in uow.trace.for_order(order_sn)]
    assert details[1] == "sku 10 -2" and details[2] == "member 1: integration +123, growth +45"


def test_a_step_that_fails_leaves_no_trace_of_its_own(db, fulfilment, make_order):
    order_sn = make_order()
    with pytest.raises(OrderNotPaidYet):
        fulfilment.award_points(order_sn)
    assert trace(db, order_sn) == []  # the bus adapter records the failure, outside the rolled-back unit
