"""The fulfilment actors on Dramatiq's in-process broker and worker, over the in-process store.

The same actors, middleware and bus run on Redis (tests/services/ proves it with a real
worker process); here each fault is injected exactly where it should hurt.
"""

import contextlib
import logging
import time
from datetime import datetime, timedelta

import pytest
from dramatiq.brokers.stub import StubBroker

from gmall_payment.adapters.bootstrap import bootstrap
from gmall_payment.adapters.dramatiq.broker import QUEUE
from gmall_payment.adapters.inprocess.seckill import InMemorySales, InMemorySeckillOrders
from gmall_payment.core import events
from gmall_payment.core.events import ALL_STEPS, STEPS_BY_EVENT
from gmall_payment.core.model import LockStatus, OrderStatus

SETTINGS = {
    "STEP_MAX_RETRIES": 3,
    "STEP_MIN_BACKOFF_SECONDS": 0.01,
    "STEP_MAX_BACKOFF_SECONDS": 0.05,
    "OUTBOX_SWEEP_SECONDS": 3600,
    "SECKILL_TICK_SECONDS": 3600,  # once, at boot: its background context must not take a planned hang
}


class Faults:
    """Makes the store raise, ``times`` times, inside a chosen store call."""

    def __init__(self, db):
        self.db = db
        self.plan = {}  # (view, method) -> [times left, error]
        self.hangs = 0  # how many background contexts hang before their step starts
        self.dead_trace_delay = 0.0  # seconds that recording an order as stuck takes

    @contextlib.contextmanager
    def context(self):
        """The background context (an app context for SQL), which can be made to hang."""
        if self.hangs > 0:
            self.hangs -= 1
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # short sleeps: the interrupt lands between them
                time.sleep(0.01)
        yield

    def fail(self, view, method, times, error):
        self.plan[(view, method)] = [times, error]

    def unit_of_work(self):
        uow = self.db.unit_of_work()
        for (view, method), entry in self.plan.items():
            original = getattr(getattr(uow, view), method)
            setattr(getattr(uow, view), method, self._faulty(entry, original))
        if self.dead_trace_delay:
            uow.trace.record = self._slow_when_dead(uow.trace.record)
        return uow

    def _slow_when_dead(self, record):
        def call(order_sn, step, outcome, detail):
            if outcome == "dead":
                time.sleep(self.dead_trace_delay)
            return record(order_sn, step, outcome, detail)

        return call

    @staticmethod
    def _faulty(entry, original):
        def call(*args, **kwargs):
            if entry[0] > 0:
                entry[0] -= 1
                raise entry[1]
            return original(*args, **kwargs)

        return call


class DatabaseDown(Exception):
    """Stands in for the driver's OperationalError."""


@pytest.fixture
def faults(db):
    return Faults(db)


@pytest.fixture
def time_limit():
    """The steps' time limit: the default, except in the one test about it. A short limit on a
    loaded machine interrupts ordinary steps anywhere, even inside a lock they hold."""
    return 30.0


@pytest.fixture
def shop(tmp_path, db, faults, time_limit):
    db.clock = datetime.now  # outbox times on the relay's clock, or every event looks old to the sweep
    services = bootstrap(
        {**SETTINGS, "STEP_TIME_LIMIT_SECONDS": time_limit, "INSTANCE_PATH": str(tmp_path)},
        faults.unit_of_work,
        sales=InMemorySales(db),
        seckill_orders=InMemorySeckillOrders(db),
        context=faults.context,
    )
    yield services
    services.bus.close()


def trace(db, order_sn):
    with db.unit_of_work() as uow:
        return [(entry.step, entry.outcome) for entry in uow.trace.for_order(order_sn)]


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def outcomes(db, order_sn, step):
    """The step's outcomes, without the "skipped" of copies sent twice (the boot sweep and the
    committing thread may both send a fresh event: harmless, and allowed here)."""
    return [outcome for name, outcome in trace(db, order_sn) if name == step and outcome != "skipped"]


def paid_event(order_sn):
    return events.payment_succeeded(order_sn, "fakepay", "T-1", "123.45")


def assert_fulfilled_once(db, order_sn):
    assert db.tables.orders[order_sn].status == OrderStatus.AWAITING_SHIPMENT
    assert (db.tables.skus[10].stock, db.tables.skus[10].stock_locked, db.tables.skus[10].sales) == (98, 0, 2)
    assert {lock.status for lock in db.tables.locks.values()} == {LockStatus.DEDUCTED}
    assert (db.tables.members[1].integration, db.tables.members[1].growth) == (123, 45)
    assert set(db.tables.ledger) == {(order_sn, "award")}


def test_the_embedded_default_is_an_in_process_broker_with_one_actor_per_step(shop):
    assert isinstance(shop.broker, StubBroker) and shop.bus.in_process
    assert sorted(shop.broker.actors) == [
        "auto_refund",
        "award_points",
        "close_trades",
        "deduct_stock",
        "drain_seckill",
        "expire_seckill_orders",
        "give_back_seckill_unit",
        "mark_order_paid",
        "revoke_points",
    ]
    actor = shop.broker.actors["award_points"]
    assert (actor.queue_name, actor.options["max_retries"], actor.options["time_limit"]) == (QUEUE, 3, 30_000)
    assert shop.bus.worker is None  # started by the first publish or request, not by bootstrap


def test_the_step_actors_and_the_bus_derive_from_the_routing_table(shop):
    assert list(shop.bus.actors) == list(ALL_STEPS) == list(shop.steps.steps)
    assert [actor.actor_name for actor in shop.bus.actors.values()] == list(ALL_STEPS)
    assert all(shop.broker.actors[step] is actor for step, actor in shop.bus.actors.items())
    assert shop.bus.routes is STEPS_BY_EVENT and shop.relay.routes is STEPS_BY_EVENT


def test_payment_succeeded_runs_every_step_once(db, shop, make_order):
    order_sn = make_order(locks=((10, 2),))
    shop.bus.publish(paid_event(order_sn))
    shop.bus.join()

    assert_fulfilled_once(db, order_sn)
    for step in ("mark_order_paid", "deduct_stock", "award_points"):
        assert outcomes(db, order_sn, step) == ["done"]
    assert [sent is not None for _, sent, _ in db.tables.outbox.values()] == [
        True
    ]  # order.paid, sent at once


def test_the_same_messages_twice_take_effect_once(db, shop, make_order):
    order_sn = make_order(locks=((10, 2),))
    for _ in range(2):
        shop.bus.publish(paid_event(order_sn))
        shop.bus.publish(events.order_paid(order_sn))
    shop.bus.join()

    assert_fulfilled_once(db, order_sn)
    outcomes = trace(db, order_sn)
    for step in ("mark_order_paid", "deduct_stock", "award_points"):
        assert outcomes.count((step, "done")) == 1, step
    assert all(outcome in ("done", "skipped", "failed") for _, outcome in outcomes)


def test_points_before_order_paid_are_retried_until_the_order_is_paid(db, shop, make_order):
    order_sn = make_order(locks=((10, 2),))
    shop.bus.publish(events.order_paid(order_sn))  # overtook payment.succeeded
    wait_for(lambda: ("award_points", "failed") in trace(db, order_sn))
    assert db.tables.ledger == {} and db.tables.skus[10].sales == 0

    shop.bus.publish(paid_event(order_sn))
    shop.bus.join()

    assert_fulfilled_once(db, order_sn)
    assert shop.broker.dead_letters == []
    with db.unit_of_work() as uow:
        failed = [
            e.detail
            for e in uow.trace.for_order(order_sn)
            if e.step == "award_points" and e.outcome == "failed"
        ]
    assert failed[0] == f"attempt 1: OrderNotPaidYet: order {order_sn} is not paid yet"


def test_a_database_error_is_retried_with_backoff(db, shop, make_order, faults):
    order_sn = make_order(locks=((10, 2),))
    faults.fail("points", "credit", 2, DatabaseDown("MySQL server has gone away"))
    shop.bus.publish(paid_event(order_sn))
    shop.bus.join()

    assert_fulfilled_once(db, order_sn)
    assert outcomes(db, order_sn, "award_points") == ["failed", "failed", "done"]
    assert shop.broker.dead_letters == []


def test_after_the_last_retry_the_message_is_dead_lettered_and_the_order_stuck(
    db, shop, make_order, faults, caplog
):
    order_sn = make_order(locks=((10, 2),))
    faults.fail("points", "credit", 1000, DatabaseDown("MySQL server has gone away"))
    with caplog.at_level(logging.ERROR):
        shop.bus.publish(paid_event(order_sn))
        shop.bus.join()

    [dead] = shop.broker.dead_letters
    assert (dead.actor_name, dead.args) == ("award_points", (order_sn,))
    assert (
        f"DEAD-LETTERED award_points(order_sn={order_sn}) after 4 attempts: DatabaseDown: MySQL server has gone away; "
        f"the order is stuck until replayed with: gmall-payment replay award_points {order_sn}"
    ) in caplog.text
    assert outcomes(db, order_sn, "award_points")[:5] == ["failed"] * 4 + ["dead"]
    assert db.tables.ledger == {} and db.tables.members[1].integration == 0
    assert db.tables.skus[10].sales == 2  # the other steps went through

    faults.plan.clear()  # the database is back: the operator replays the step
    assert shop.steps.run("award_points", order_sn) is True
    assert_fulfilled_once(db, order_sn)
    assert trace(db, order_sn)[-1] == ("award_points", "done")


def test_join_returns_once_the_order_is_marked_stuck(db, shop, make_order, faults):
    """Whoever waits for the queue to empty (tests, the CLI's drain) finds the order stuck."""
    order_sn = make_order(locks=((10, 2),))
    faults.fail("points", "credit", 1000, DatabaseDown("MySQL server has gone away"))
    faults.dead_trace_delay = 0.3
    shop.bus.publish(paid_event(order_sn))
    shop.bus.join()

    written = [
        entry.outcome for entry in db.tables.trace.values() if entry.step == "award_points"
    ]  # no waiting
    assert written[-1] == "dead"


def test_an_unknown_order_is_dead_lettered_at_once(db, shop, caplog):
    shop.bus.publish(events.order_paid("NO-SUCH-ORDER"))
    shop.bus.join()

    assert sorted(m.actor_name for m in shop.broker.dead_letters) == ["award_points", "deduct_stock"]
    assert "DEAD-LETTERED award_points(order_sn=NO-SUCH-ORDER) after 1 attempts: OrderNotFound" in caplog.text


@pytest.mark.parametrize("time_limit", [1.0])
def test_a_step_over_its_time_limit_is_interrupted_and_retried(db, shop, make_order, faults):
    order_sn = make_order(locks=((10, 2),))
    shop.bus.start()
    time.sleep(0.3)  # the periodic jobs' first run, at boot, is past: the hang is the step's
    faults.hangs = 1
    started = time.monotonic()
    shop.bus.publish(paid_event(order_sn))
    shop.bus.join()

    assert time.monotonic() - started < 4
    assert_fulfilled_once(db, order_sn)
    assert outcomes(db, order_sn, "mark_order_paid") == ["failed", "done"]
    with db.unit_of_work() as uow:
        assert uow.trace.for_order(order_sn)[0].detail == "attempt 1: TimeLimitExceeded"


def test_a_refusing_broker_keeps_the_event_in_the_outbox(db, shop, make_order, monkeypatch):
    order_sn = make_order(locks=((10, 2),))
    with db.unit_of_work() as uow:
        uow.outbox.add(paid_event(order_sn))
        uow.commit()

    def refuse(message, *, delay=None):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(shop.broker, "enqueue", refuse)
    with pytest.raises(ConnectionError):
        shop.bus.publish(paid_event(order_sn))
    assert shop.relay.flush() == 0
    assert [sent for _, sent, _ in db.tables.outbox.values()] == [None]

    monkeypatch.undo()
    assert shop.relay.flush() >= 1  # and order.paid, if the worker wrote it during this flush
    shop.bus.join()
    assert_fulfilled_once(db, order_sn)


def test_the_worker_sweeps_the_outbox_when_it_boots(db, shop, make_order):
    order_sn = make_order(locks=((10, 2),))
    db.clock = lambda: datetime.now() - timedelta(minutes=1)
    with db.unit_of_work() as uow:  # committed a minute ago, then the process died before sending it
        uow.outbox.add(paid_event(order_sn))
        uow.commit()
    db.clock = datetime.now

    shop.bus.start()
    wait_for(lambda: set(db.tables.ledger) == {(order_sn, "award")})
    shop.bus.join()
    assert_fulfilled_once(db, order_sn)
