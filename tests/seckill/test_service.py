"""The flash-sale service end to end on its ports: in process, and on Redis with SQLite or
MariaDB, where the database and Redis must agree."""

import copy
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

import pytest
from support.races import run_together
from support.seckill_web import lose

from gmall_payment.core import events
from gmall_payment.core.closing import OrderClosing
from gmall_payment.core.events import GIVE_BACK_SECKILL_UNIT, STEPS_BY_EVENT
from gmall_payment.core.model import LockStatus, Order, OrderStatus
from gmall_payment.core.outbox import OutboxRelay
from gmall_payment.core.seckill import Click, InvalidSale, Outcome, ReservationState, Sale, SeckillOrderStatus
from gmall_payment.ports.messaging import MessageBus
from gmall_payment.ports.seckill import ExpiryScheduler
from gmall_payment.ports.store import relayed
from gmall_payment.seckill.service import SeckillService

SKU = 1001
START = datetime(2024, 11, 11, 20, 0, 0)
OPEN = START + timedelta(minutes=1)
END = START + timedelta(hours=1)
PAY_WITHIN = timedelta(minutes=15)
DUE = OPEN + PAY_WITHIN
MEMBERS = 30
IP = "192.0.2.10"


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


class Expiries(ExpiryScheduler):
    """Keeps what the service scheduled, for the test to deliver (or lose)."""

    def __init__(self):
        self.scheduled = []

    def schedule(self, order_sns, at):
        self.scheduled.append((list(order_sns), at))


class Steps(MessageBus):
    """Runs the flash sale's step of each event at once, as the worker would; ``lose`` drops them."""

    def __init__(self):
        self.service, self.lose, self.delivered = None, False, []

    def publish(self, event):
        if self.lose:
            return
        assert event.name == events.ORDER_CLOSED  # the only event the flash sale's world writes
        assert GIVE_BACK_SECKILL_UNIT in STEPS_BY_EVENT[event.name]
        self.delivered.append(event.order_sn)
        self.service.give_back(event.order_sn)


class World:
    def __init__(self, service, shop, clock, steps, expiries):
        self.service, self.shop, self.clock, self.steps, self.expiries = service, shop, clock, steps, expiries
        self.gate = service.gate

    def sale(self, units=10, sku_id=SKU):
        sale = self.service.create_sale(
            Sale(sku_id, "华为 Mate 60 秒杀", Decimal("4999.00"), units, START, END)
        )
        assert self.service.preheat(sale) is True
        return sale

    def drain(self, sku_id=SKU, consumer="creator"):
        total = 0
        while made := self.service.create_orders(sku_id, consumer):
            total += made
        return total


@pytest.fixture
def world(stack):
    gate, latch, shop = stack
    for member_id in range(1, MEMBERS + 1):
        shop.backend.add_member(member_id, f"member{member_id}")
    shop.backend.add_sku(SKU, "华为 Mate 60", 100)
    shop.backend.add_sku(2002, "小米 14", 100)
    clock = Clock(OPEN)
    steps, expiries = Steps(), Expiries()
    relay = OutboxRelay(shop.backend.uow, steps)
    closing = OrderClosing(relayed(shop.backend.uow, relay.flush))
    service = SeckillService(
        gate,
        shop.sales,
        shop.orders,
        latch,
        closing,
        shop.backend.uow,
        expiries,
        clock=clock,
        pay_within=PAY_WITHIN,
        claim_after=30,
        max_deliveries=3,
        batch=100,
    )
    steps.service = service
    return World(service, shop, clock, steps, expiries)


def test_a_sale_may_not_overlap_another_of_its_sku(world):
    world.sale()
    with pytest.raises(InvalidSale, match="on sale"):
        world.service.create_sale(Sale(SKU, "again", Decimal("1.00"), 1, END - timedelta(seconds=1), END))
    world.service.create_sale(Sale(SKU, "later", Decimal("1.00"), 1, END, END + timedelta(hours=1)))
    world.service.create_sale(Sale(2002, "other SKU", Decimal("1.00"), 1, START, END))


def test_a_click_answers_at_once_with_an_order_number_made_before_the_reservation(world):
    world.sale()
    click = world.service.click(1, SKU, IP)

    assert click.outcome is Outcome.RESERVED
    assert click.order_sn.startswith(OPEN.strftime("%Y%m%d%H%M%S%f"))
    assert world.service.click(1, SKU, IP) == Click(Outcome.ALREADY_BOUGHT, click.order_sn)
    assert world.service.click(1, 2002, IP) == Click(Outcome.NOT_ON_SALE)
    assert world.service.click(2, SKU, IP, now=END) == Click(Outcome.ENDED)


def test_orders_are_made_in_the_background_and_wake_whoever_waits(world):
    world.sale()
    sns = [world.service.click(member, SKU, IP).order_sn for member in (1, 2, 3)]
    woken = []
    waiter = threading.Thread(target=lambda: woken.append(timed(world, sns[0], 1, 5)))
    waiter.start()
    time.sleep(0.2)

    assert world.service.create_orders(SKU, "creator") == 3
    waiter.join(timeout=10)
    [(found, elapsed)] = woken
    assert found is True and elapsed < 2
    for member, sn in zip((1, 2, 3), sns, strict=True):
        order = world.shop.order(sn)
        assert (order.member_id, order.status, order.pay_amount) == (
            member,
            OrderStatus.AWAITING_PAYMENT,
            Decimal("4999.00"),
        )
        assert [(i.sku_id, i.quantity) for i in order.items] == [(SKU, 1)]
        assert world.service.wait_for_order(sn, member, 5) is True
    assert world.shop.stock_of(SKU) == (100, 3, 0)
    assert world.service.create_orders(SKU, "creator") == 0


def timed(world, order_sn, member_id, timeout):
    with world.shop.context():
        started = time.monotonic()
        return world.service.wait_for_order(order_sn, member_id, timeout), time.monotonic() - started


def test_the_wait_for_an_order_that_never_appears_is_bounded(world):
    world.sale()
    world.service.click(1, SKU, IP)  # reserved, but no order creator runs

    found, elapsed = timed(world, world.service.click(1, SKU, IP).order_sn, 1, 0.3)
    assert found is False and 0.25 <= elapsed < 1.5


def test_a_member_is_told_their_reservation_pending_then_created_and_any_other_number_lost(world):
    world.sale()
    mine = world.service.click(1, SKU, IP).order_sn
    assert world.service.state(1, mine) is ReservationState.PENDING  # reserved, its order not made yet
    assert world.service.state(2, mine) is ReservationState.LOST  # another member's number...
    assert (
        world.service.state(1, "20241111200001123456000000") is ReservationState.LOST
    )  # ...as a made-up one
    assert world.service.create_orders(SKU, "creator") == 1
    assert world.service.state(1, mine) is ReservationState.CREATED
    assert world.service.state(2, mine) is ReservationState.LOST


def test_a_crashed_creator_is_replaced_and_each_order_made_once(world):
    sale = world.sale()
    first = [world.service.click(member, SKU, IP).order_sn for member in (1, 2, 3)]
    world.gate.take(SKU, "crashed before making orders", 10, 30)
    assert world.service.create_orders(SKU, "survivor") == 0  # not idle long enough yet

    later = [world.service.click(member, SKU, IP).order_sn for member in (4, 5)]
    crashing = copy.copy(world.service)
    crashing.gate = CrashOnAck(world.gate)
    with pytest.raises(RuntimeError):
        crashing.create_orders(SKU, "crashed after making orders")
    assert all(world.shop.order(sn) for sn in later)
    assert timed(world, later[0], 4, 5)[1] < 1  # made, though nobody opened its latch

    world.service.claim_after = 0
    assert world.drain(consumer="survivor") == 5
    assert all(world.shop.order(sn) for sn in first)
    assert world.shop.orders.held(sale.id) == 5
    assert world.shop.stock_of(SKU) == (100, 5, 0)
    assert world.drain(consumer="survivor") == 0


class CrashOnAck:
    """A gate whose caller dies before acknowledging what it took."""

    def __init__(self, gate):
        self._gate = gate

    def ack(self, sku_id, reservations):
        raise RuntimeError("killed")

    def __getattr__(self, name):
        return getattr(self._gate, name)


def test_expiry_closes_an_unpaid_order_gives_its_unit_back_once_and_the_member_buys_again(world):
    sale = world.sale()
    sn = world.service.click(1, SKU, IP).order_sn
    world.drain()
    assert world.expiries.scheduled == [([sn], DUE)]

    assert world.service.expire(sn) is False  # not due yet
    world.clock.now = DUE
    assert world.service.expire(sn) is True
    order = world.shop.order(sn)
    assert (order.status, order.integration) == (OrderStatus.CLOSED, 499)  # one point per ten yuan
    assert [lock.status for lock in world.shop.locks(sn)] == [LockStatus.RELEASED]
    assert world.steps.delivered == [sn]  # order.closed reached the give-back
    assert (world.gate.units_left(SKU), world.shop.orders.held(sale.id), world.shop.stock_of(SKU)) == (
        10,
        0,
        (100, 0, 0),
    )
    assert world.service.order(sn).status is SeckillOrderStatus.CLOSED

    assert world.service.expire(sn) is False  # the second expiry message
    assert world.service.give_back(sn) is False  # order.closed delivered twice
    assert world.service.sweep() == 0
    assert world.gate.units_left(SKU) == 10
    with world.shop.backend.uow() as uow:
        assert [(e.step, e.outcome) for e in uow.trace.for_order(sn)] == [
            ("close_order", "done"),
            (GIVE_BACK_SECKILL_UNIT, "done"),
            (GIVE_BACK_SECKILL_UNIT, "skipped"),
        ]

    world.clock.now = OPEN + timedelta(minutes=20)
    again = world.service.click(1, SKU, IP)
    assert again.outcome is Outcome.RESERVED and again.order_sn != sn
    world.drain()
    assert world.shop.order(again.order_sn).status is OrderStatus.AWAITING_PAYMENT
    assert (world.gate.units_left(SKU), world.shop.orders.held(sale.id)) == (9, 1)


def test_whoever_closes_a_seckill_order_its_unit_comes_back_once(world):
    world.sale()
    sn = world.service.click(1, SKU, IP).order_sn
    world.drain()

    assert world.service.closing.close(sn, "cancelled by the shopper") is True  # not the flash sale's expiry
    assert world.gate.units_left(SKU) == 10
    assert world.service.click(1, SKU, IP).outcome is Outcome.RESERVED


def test_order_closed_of_an_order_that_is_no_seckill_order_is_skipped(world):
    world.shop.backend.add_order(
        Order("not-seckill", 1, OrderStatus.AWAITING_PAYMENT, Decimal("10.00")), [(SKU, 1)]
    )
    assert world.service.closing.close("not-seckill", "timeout") is True
    assert world.steps.delivered == ["not-seckill"]
    with world.shop.backend.uow() as uow:
        assert [(e.step, e.outcome, e.detail) for e in uow.trace.for_order("not-seckill")][1:] == [
            (GIVE_BACK_SECKILL_UNIT, "skipped", "not a flash-sale order")
        ]


def test_a_paid_order_never_expires(world):
    world.sale()
    sn = world.service.click(1, SKU, IP).order_sn
    world.drain()
    with world.shop.backend.uow() as uow:
        uow.orders.move(sn, OrderStatus.AWAITING_PAYMENT, OrderStatus.AWAITING_SHIPMENT)
        uow.commit()

    world.clock.now = DUE
    assert world.service.expire(sn) is False
    assert world.service.sweep() == 0
    assert world.gate.units_left(SKU) == 9


def test_the_sweep_expires_what_a_lost_message_left_and_finishes_interrupted_give_backs(world):
    world.sale()
    interrupted, lost = (world.service.click(member, SKU, IP).order_sn for member in (1, 2))
    world.drain()
    world.clock.now = DUE
    world.steps.lose = True  # order.closed is not delivered: the give-back is left to do
    assert world.service.expire(interrupted)
    world.shop.orders.release(interrupted)  # the give-back began, then the process died
    world.steps.lose = False

    assert world.service.sweep() == 1  # the lost expiry of ``lost``
    assert world.shop.order(lost).status is OrderStatus.CLOSED
    assert world.gate.units_left(SKU) == 10
    assert world.shop.orders.unreturned(10) == []
    assert world.service.sweep() == 0
    assert world.gate.units_left(SKU) == 10


def test_a_reservation_whose_sale_is_unknown_is_abandoned_and_its_unit_returned_at_once(world):
    ghost = Sale(SKU, "not in the database", Decimal("1.00"), 5, START, END, id=999)
    world.gate.preheat(ghost, 5)
    sn = world.service.click(1, SKU, IP).order_sn

    assert world.service.create_orders(SKU, "creator") == 1
    assert world.gate.units_left(SKU) == 5
    assert world.service.click(1, SKU, IP).outcome is Outcome.RESERVED  # the member is free again
    found, elapsed = timed(world, sn, 1, 5)
    assert found is False and elapsed < 1  # the waiter is told at once


def test_an_order_that_cannot_be_made_is_retried_then_abandoned_and_its_unit_returned(world):
    world.sale(units=5)
    sn = world.service.click(1, SKU, IP).order_sn
    world.service.claim_after = 0
    world.service.orders = FailingCreate(world.shop.orders, refuse)

    made = [world.service.create_orders(SKU, "creator") for _ in range(3)]
    assert made == [0, 0, 1]  # max_deliveries=3
    assert world.gate.units_left(SKU) == 5
    assert world.service.order(sn).status is SeckillOrderStatus.ABANDONED and world.shop.order(sn) is None
    assert world.shop.orders.unreturned(10) == []
    assert world.expiries.scheduled == []
    found, elapsed = timed(world, sn, 1, 5)
    assert found is False and elapsed < 1


def refuse(orders):
    raise RuntimeError("the database refused it")


def test_one_bad_order_does_not_hold_up_the_rest_of_its_batch(world):
    world.sale()
    good, bad, also_good = (world.service.click(member, SKU, IP).order_sn for member in (1, 2, 3))
    create = world.shop.orders.create

    def failing_on_bad(orders):
        if any(o.order.order_sn == bad for o in orders):
            raise RuntimeError("the database refused it")
        return create(orders)

    world.service.orders = FailingCreate(world.shop.orders, failing_on_bad)
    assert world.service.create_orders(SKU, "creator") == 2
    assert world.shop.order(good) and world.shop.order(also_good) and not world.shop.order(bad)
    assert world.gate.units_left(SKU) == 7  # the bad one is retried later, not given up yet


class FailingCreate:
    def __init__(self, orders, create):
        self._orders, self.create = orders, create

    def __getattr__(self, name):
        return getattr(self._orders, name)


def lose_the_gate(world):
    lose(world.gate, SKU)


def test_after_the_gate_lost_the_sale_members_holding_an_order_are_told_already_bought(world):
    sale = world.sale()
    first = world.service.click(1, SKU, IP).order_sn
    world.drain()
    lose_the_gate(world)
    assert world.service.click(1, SKU, IP).outcome is Outcome.NOT_ON_SALE  # nothing on the click reloads it

    assert world.service.tick() is True  # the tick sees the sale lost and loads it again from the database
    assert world.gate.units_left(SKU) == 9
    assert world.service.click(1, SKU, IP) == Click(Outcome.ALREADY_BOUGHT, first)
    assert world.service.tick() is True and world.gate.units_left(SKU) == 9  # loaded once
    assert world.shop.orders.held(sale.id) == 1 and world.shop.order(first)


def test_reservations_in_flight_when_the_gate_lost_the_sale_are_refused_and_never_oversold(world):
    """The issue's oversell: a batch's transaction held open while Redis restarts empty and the
    tick loads the sale again; when the batch goes on, the database refuses it."""
    sale = world.sale(units=10)
    early = {member: world.service.click(member, SKU, IP).order_sn for member in range(1, 11)}
    create, late = world.shop.orders.create, {}

    def create_after_the_loss(orders):
        if not late:
            lose_the_gate(world)
            world.service.tick()
            late.update({member: world.service.click(member, SKU, IP).order_sn for member in range(11, 21)})
            assert world.drain() == 10
        return create(orders)

    world.service.orders = FailingCreate(world.shop.orders, create_after_the_loss)
    assert world.drain() == 10

    assert world.shop.orders.held(sale.id) == 10 == sale.units
    assert all(world.shop.order(sn).member_id == member for member, sn in late.items())
    assert all(world.shop.order(sn) is None for sn in early.values())
    assert {world.service.state(m, sn) for m, sn in early.items()} == {ReservationState.ABANDONED}
    assert world.gate.units_left(SKU) == 0 and world.shop.orders.unreturned(20) == []
    assert world.service.click(1, SKU, IP).outcome is Outcome.SOLD_OUT
    assert world.shop.stock_of(SKU) == (100, 10, 0)


def test_a_reservation_lost_with_the_gate_is_pending_until_the_reload_then_lost(world):
    world.sale()
    sn = world.service.click(1, SKU, IP).order_sn
    lose_the_gate(world)
    assert world.service.state(1, sn) is ReservationState.PENDING  # one in flight may still be made

    world.service.tick()
    assert world.service.state(1, sn) is ReservationState.LOST
    assert world.drain() == 0 and world.service.order(sn) is None
    again = world.service.click(1, SKU, IP)  # the member is free to buy again
    assert (
        again.outcome is Outcome.RESERVED
        and world.service.state(1, again.order_sn) is ReservationState.PENDING
    )


def test_the_database_refuses_orders_past_the_sale_s_units_whatever_the_gate_says(world):
    sale = world.sale(units=3)
    world.gate.unload(SKU, sale.id)
    world.gate.preheat(world.shop.sales.get(sale.id), 5)  # a gate wrong about the units
    sns = {member: world.service.click(member, SKU, IP).order_sn for member in range(1, 6)}

    assert world.drain() == 5
    assert world.shop.orders.held(sale.id) == 3
    states = [world.service.state(member, sn) for member, sn in sns.items()]
    assert states == [ReservationState.CREATED] * 3 + [ReservationState.ABANDONED] * 2
    assert world.gate.units_left(SKU) == 0  # no unit the database does not have went back
    assert world.service.click(4, SKU, IP).outcome is Outcome.SOLD_OUT  # freed, but nothing left


def test_a_burst_sells_each_unit_once_and_the_database_agrees_with_the_gate(world):
    sale = world.sale(units=10)
    threads, clicks_each = 40, 15
    clicking = threading.Event()
    clicking.set()
    shoppers_done = threading.Barrier(threads, action=clicking.clear, timeout=60)

    def shopper(n):
        clicks = []
        try:
            for i in range(clicks_each):
                member = (n * 7 + i) % MEMBERS + 1
                clicks.append((member, world.service.click(member, SKU, IP)))
            return clicks
        finally:
            shoppers_done.wait()  # the last one done stops the creators

    def creator(name):
        with world.shop.context():
            while world.service.create_orders(SKU, name) or clicking.is_set():
                pass

    outcomes = run_together(
        [partial(shopper, n) for n in range(threads)] + [partial(creator, f"creator-{n}") for n in range(2)],
        timeout=60,
    )
    errors = [outcome.error for outcome in outcomes if outcome.error is not None]
    clicks = [click for outcome in outcomes[:threads] if outcome.error is None for click in outcome.value]
    world.service.claim_after = 0
    world.drain()

    assert not errors
    reserved = {member: c.order_sn for member, c in clicks if c.outcome is Outcome.RESERVED}
    assert sum(c.outcome is Outcome.RESERVED for _, c in clicks) == 10 == len(reserved)
    assert all(world.shop.order(sn).member_id == member for member, sn in reserved.items())
    assert world.gate.units_left(SKU) == 0
    assert world.shop.orders.held(sale.id) == 10
    assert world.shop.stock_of(SKU) == (100, 10, 0)


def test_waiting_on_another_members_order_waits_as_on_an_unknown_number(world):
    world.sale()
    sn = world.service.click(1, SKU, IP).order_sn
    assert world.service.create_orders(SKU, "creator") == 1
    assert timed(world, sn, 1, 5)[0] is True

    theirs, unknown = timed(world, sn, 2, 0.3), timed(world, "1" * len(sn), 2, 0.3)
    assert theirs[0] is unknown[0] is False and theirs[1] >= 0.25 and unknown[1] >= 0.25
    assert world.service.order_of(2, sn) is None and world.service.order_of(1, sn).reservation.member_id == 1
