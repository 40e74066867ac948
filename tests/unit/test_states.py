"""The status machines (``core.states``): every thing with a status has one table of moves, and a
move not in it is refused by the domain before any store is asked to make it."""

import inspect
import itertools
from datetime import datetime
from enum import IntEnum

import pytest

from gmall_payment.adapters.inprocess.seckill import InMemorySeckillOrders
from gmall_payment.core import model, seckill, states
from gmall_payment.core.errors import DomainError, IllegalMove
from gmall_payment.core.model import LockStatus, OrderStatus, PaymentStatus, RefundStatus
from gmall_payment.core.seckill import SeckillOrderStatus
from gmall_payment.core.states import MACHINES, Move, StateMachine

NOW = datetime(2024, 11, 11, 12, 0, 0)

#: Every table, written out: a move added to or dropped from a machine must be added or dropped here.
TABLES = {
    "order": {
        (OrderStatus.AWAITING_PAYMENT, OrderStatus.AWAITING_SHIPMENT),
        (OrderStatus.AWAITING_PAYMENT, OrderStatus.CLOSED),
    },
    "payment": {
        (PaymentStatus.UNPAID, PaymentStatus.PAID),
        (PaymentStatus.UNPAID, PaymentStatus.CLOSED),
        (PaymentStatus.CLOSED, PaymentStatus.PAID),
        (PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED),
        (PaymentStatus.PAID, PaymentStatus.REFUNDED),
        (PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED),
    },
    "stock lock": {
        (LockStatus.LOCKED, LockStatus.DEDUCTED),
        (LockStatus.LOCKED, LockStatus.RELEASED),
    },
    "refund": {
        (RefundStatus.PENDING, RefundStatus.SUCCEEDED),
        (RefundStatus.PENDING, RefundStatus.FAILED),
        (RefundStatus.FAILED, RefundStatus.PENDING),
    },
    "flash-sale reservation": {
        (SeckillOrderStatus.CREATED, SeckillOrderStatus.CLOSED),
    },
}


def status_enums():
    """Every status of the domain: the IntEnums named ``*Status`` in core.model and core.seckill."""
    return {
        obj
        for module in (model, seckill)
        for name, obj in vars(module).items()
        if inspect.isclass(obj)
        and issubclass(obj, IntEnum)
        and obj is not IntEnum
        and name.endswith("Status")
    }


def test_every_status_has_exactly_one_machine():
    assert sorted(m.statuses.__name__ for m in MACHINES) == sorted(e.__name__ for e in status_enums())
    assert len({m.name for m in MACHINES}) == len(MACHINES)


def test_the_tables_are_the_ones_written_here():
    assert {m.name: set(m.pairs) for m in MACHINES} == TABLES


def every_pair(machine):
    return list(itertools.product(machine.statuses, repeat=2))


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_check_refuses_every_move_not_in_the_table(machine):
    for source, target in every_pair(machine):
        if (source, target) in TABLES[machine.name]:
            machine.check(source, target)
            assert target in machine.targets(source)
        else:
            with pytest.raises(IllegalMove) as refused:
                machine.check(source, target, "X1")
            assert isinstance(refused.value, DomainError)
            assert (refused.value.machine, refused.value.source, refused.value.target) == (
                machine,
                source,
                target,
            )
            message = str(refused.value)
            assert f"{machine.name} X1" in message and source.name in message and target.name in message


class Spy:
    """Stands in for a store's compare-and-set: records each call, answers True."""

    def __init__(self):
        self.calls = []

    def __call__(self, key, from_status, to_status, *given, **changes):
        self.calls.append((key, from_status, to_status))
        return True


def stores(db):
    """For each machine: the store whose public move asks it, the name of that move, and of the
    compare-and-set it calls, and the keyword arguments the move needs."""
    uow = db.unit_of_work()
    return {
        "order": (uow.orders, "move", "_move", {}),
        "payment": (uow.payments, "move", "_move", {}),
        "stock lock": (uow.stock, "move_lock", "_move_lock", {}),
        "refund": (uow.refunds, "move", "_move", {"update_time": NOW}),
        "flash-sale reservation": (InMemorySeckillOrders(db), "move", "_move", {}),
    }


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_the_store_is_never_asked_to_make_a_move_not_in_the_table(db, monkeypatch, machine):
    store, move, compare_and_set, needed = stores(db)[machine.name]
    spy = Spy()
    monkeypatch.setattr(store, compare_and_set, spy)
    for source, target in every_pair(machine):
        if (source, target) in TABLES[machine.name]:
            assert getattr(store, move)(7, source, target, **needed)
            assert spy.calls.pop() == (7, source, target)
        else:
            with pytest.raises(IllegalMove):
                getattr(store, move)(7, source, target, **needed)
            assert spy.calls == [], f"{machine.name}: {source.name} -> {target.name} reached the store"


def test_a_machine_holds_only_its_own_statuses_each_move_once():
    with pytest.raises(ValueError):
        StateMachine(
            "mixed",
            OrderStatus,
            initial=(OrderStatus.AWAITING_PAYMENT,),
            moves=(Move(OrderStatus.AWAITING_PAYMENT, PaymentStatus.PAID, "no"),),
        )
    with pytest.raises(ValueError):
        StateMachine(
            "twice",
            LockStatus,
            initial=(LockStatus.LOCKED,),
            moves=(
                Move(LockStatus.LOCKED, LockStatus.DEDUCTED, "a"),
                Move(LockStatus.LOCKED, LockStatus.DEDUCTED, "b"),
            ),
        )


def test_a_refused_move_says_where_the_status_may_go():
    with pytest.raises(IllegalMove, match="has no move from REFUNDED"):
        states.PAYMENTS.check(PaymentStatus.REFUNDED, PaymentStatus.PAID)
    with pytest.raises(IllegalMove, match="allows from UNPAID only CLOSED, PAID"):
        states.PAYMENTS.check(PaymentStatus.UNPAID, PaymentStatus.REFUNDED)
