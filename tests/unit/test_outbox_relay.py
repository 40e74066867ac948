"""OutboxRelay: sends what was committed, in order, and marks an event sent only once accepted."""

import threading
import time
from datetime import timedelta

import pytest
from support.buses import RecordingBus

from gmall_payment.core import events
from gmall_payment.core.events import STEPS_BY_EVENT
from gmall_payment.core.outbox import CommittedEvent, OutboxRelay
from gmall_payment.ports.store import relayed


class FulfillingBus(RecordingBus):
    """A bus whose consumers run at once, as a synchronous broker would: they add events."""

    def __init__(self, fulfilment):
        super().__init__()
        self.fulfilment = fulfilment

    def publish(self, event):
        super().publish(event)
        for step in STEPS_BY_EVENT[event.name]:
            getattr(self.fulfilment, step)(event.order_sn)


def add_events(db, order_sns):
    added = [events.order_paid(order_sn) for order_sn in order_sns]
    with db.unit_of_work() as uow:
        for event in added:
            uow.outbox.add(event)
        uow.commit()
    return added


def sent_at(db):
    return [when for _, when, _ in sorted(db.tables.outbox.values(), key=lambda row: row[0].id)]


@pytest.mark.parametrize("batch", [100, 2, 1])
def test_flush_sends_every_unsent_event_in_order_and_marks_it(db, outbox_events, clock, batch):
    added = add_events(db, ["O1", "O2", "O3", "O4", "O5"])
    bus = RecordingBus()
    relay = OutboxRelay(db.unit_of_work, bus, clock=clock, batch=batch)

    assert relay.flush() == 5
    assert bus.published == added
    assert outbox_events(unsent_only=True) == []
    assert all(when is not None for when in sent_at(db))

    assert relay.flush() == 0
    assert bus.published == added


def test_flush_of_an_empty_outbox(db):
    bus = RecordingBus()
    assert OutboxRelay(db.unit_of_work, bus).flush() == 0
    assert bus.published == []


def test_uncommitted_events_are_never_sent(db):
    with db.unit_of_work() as uow:
        uow.outbox.add(events.order_paid("ROLLED-BACK"))
    bus = RecordingBus()
    assert OutboxRelay(db.unit_of_work, bus).flush() == 0
    assert bus.published == []


# events leave with the commit: the unit of work hands them to the relay


@pytest.fixture
def relay(db, clock):
    """A relay on a recording bus whose ``flushed`` keeps what each ``flush`` was handed."""
    relay = OutboxRelay(db.unit_of_work, RecordingBus(), clock=clock)
    relay.flushed = []
    flush = relay.flush

    def recorded(*ids):
        relay.flushed.append(ids)
        return flush(*ids)

    relay.flush = recorded
    return relay


def test_a_committed_unit_of_work_hands_its_events_to_the_relay_exactly_once(db, relay, outbox_events):
    uow = relayed(db.unit_of_work, relay.flush)
    with uow() as unit:
        first = unit.outbox.add(events.order_paid("O1"))
        second = unit.outbox.add(events.order_closed("O2", "unpaid in time"))
        unit.commit()
        assert relay.flushed == []  # it leaves as the unit of work ends, when the store is free again
        unit.rollback()  # after the commit: harmless, and hands nothing back
    assert relay.flushed == [(first, second)]
    assert (
        relay.bus.published
        == outbox_events()
        == [events.order_paid("O1"), events.order_closed("O2", "unpaid in time")]
    )
    assert outbox_events(unsent_only=True) == []

    with uow() as unit:  # a unit of work that commits no event hands nothing over
        unit.trace.record("O1", events.DEDUCT_STOCK, "done")
        unit.commit()
    assert relay.flushed == [(first, second)] and len(relay.bus.published) == 2


def test_events_handed_over_by_their_commit_are_sent_without_being_read_back(db, relay, outbox_events):
    reads = []

    def counting_uow():
        made = db.unit_of_work()
        unsent = made.outbox.unsent
        made.outbox.unsent = lambda *args, **kwargs: reads.append(args) or unsent(*args, **kwargs)
        return made

    relay.uow = counting_uow
    with relayed(db.unit_of_work, relay.flush)() as unit:
        unit.outbox.add(events.order_paid("O1"))
        unit.outbox.add(events.order_paid("O2"))
        unit.commit()
    assert [e.order_sn for e in relay.bus.published] == ["O1", "O2"]
    assert reads == []  # the events came with their ids: no SELECT of what was just committed
    assert outbox_events(unsent_only=True) == []  # and they are marked sent

    assert relay.flush(*sorted(db.tables.outbox)) == 0  # plain ids are read, and found sent
    assert len(reads) == 1


def test_a_unit_of_work_committed_twice_hands_both_commits_over_together(db, relay):
    with relayed(db.unit_of_work, relay.flush)() as unit:
        first = unit.outbox.add(events.order_paid("O1"))
        unit.commit()
        second = unit.outbox.add(events.order_paid("O2"))
        unit.commit()
    assert relay.flushed == [(first, second)]
    assert [e.order_sn for e in relay.bus.published] == ["O1", "O2"]


def test_a_rolled_back_unit_of_work_hands_nothing_to_the_relay(db, relay, outbox_events):
    uow = relayed(db.unit_of_work, relay.flush)
    with uow() as unit:  # never committed
        unit.outbox.add(events.order_paid("FORGOTTEN"))
    with pytest.raises(RuntimeError), uow() as unit:
        unit.outbox.add(events.order_paid("FAILED"))
        raise RuntimeError("the change failed half way")
    with uow() as unit:
        unit.outbox.add(events.order_paid("UNDONE"))
        unit.rollback()
        unit.commit()  # commits nothing: the event went with the rollback
    assert relay.flushed == [] and relay.bus.published == [] and outbox_events() == []


def test_only_the_events_of_the_commit_are_handed_over_not_those_rolled_back_after(db, relay, outbox_events):
    with relayed(db.unit_of_work, relay.flush)() as unit:
        kept = unit.outbox.add(events.order_paid("KEPT"))
        unit.commit()
        unit.outbox.add(events.order_paid("ROLLED-BACK"))
        unit.rollback()
        unit.outbox.add(events.order_paid("NEVER-COMMITTED"))
    assert relay.flushed == [(kept,)]
    assert relay.bus.published == outbox_events() == [events.order_paid("KEPT")]


def test_a_commit_that_fails_hands_nothing_over(db, relay, outbox_events):
    def failing_commit():
        raise ConnectionError("the database went away during the commit")

    with pytest.raises(ConnectionError), relayed(db.unit_of_work, relay.flush)() as unit:
        unit.outbox.add(events.order_paid("LOST"))
        unit._commit = failing_commit
        unit.commit()
    assert relay.flushed == [] and outbox_events() == []


def test_a_unit_of_work_not_relayed_leaves_its_events_to_the_sweep(db, relay, outbox_events):
    with db.unit_of_work() as unit:
        unit.outbox.add(events.order_paid("SWEPT"))
        unit.commit()
    assert relay.flushed == [] and outbox_events(unsent_only=True) == [events.order_paid("SWEPT")]


def test_a_refusing_bus_keeps_the_rest_for_a_later_flush(db, outbox_events, clock):
    added = add_events(db, ["O1", "O2", "O3"])
    flaky = RecordingBus(fail_on=2)

    assert OutboxRelay(db.unit_of_work, flaky, clock=clock).flush() == 1
    assert flaky.published == added[:1]
    first, second, third = sent_at(db)
    assert first is not None and second is None and third is None
    assert outbox_events(unsent_only=True) == added[1:]

    working = RecordingBus()
    assert OutboxRelay(db.unit_of_work, working, clock=clock).flush() == 2
    assert working.published == added[1:]
    assert outbox_events(unsent_only=True) == []


def test_a_bus_refusing_the_first_event_sends_nothing(db, outbox_events):
    added = add_events(db, ["O1", "O2"])
    assert OutboxRelay(db.unit_of_work, RecordingBus(fail_on=1)).flush() == 0
    assert outbox_events(unsent_only=True) == added


def test_events_added_by_consumers_during_a_flush_go_out_in_the_same_flush(
    db, payments, fulfilment, make_order, notify_params, outbox_events, clock
):
    order_sn = make_order(locks=((10, 2),), integration=7, growth=8)
    payments.start(order_sn, "fakepay")
    payments.handle_notification("fakepay", notify_params(out_trade_no=order_sn))
    bus = FulfillingBus(fulfilment)

    assert OutboxRelay(db.unit_of_work, bus, clock=clock).flush() == 2

    assert [(e.name, e.order_sn) for e in bus.published] == [
        (events.PAYMENT_SUCCEEDED, order_sn),
        (events.ORDER_PAID, order_sn),  # written by mark_order_paid while the relay was flushing
    ]
    assert outbox_events(unsent_only=True) == []
    assert db.tables.skus[10].sales == 2
    assert (db.tables.members[1].integration, db.tables.members[1].growth) == (7, 8)


def test_flush_never_raises_when_the_store_fails(db):
    def broken_uow():
        raise RuntimeError("database is down")

    bus = RecordingBus()
    assert OutboxRelay(broken_uow, bus).flush() == 0
    assert bus.published == []


def test_flush_of_given_ids_sends_only_those(db, outbox_events, clock):
    added = add_events(db, ["O1", "O2", "O3"])
    ids = sorted(db.tables.outbox)
    bus = RecordingBus()
    relay = OutboxRelay(db.unit_of_work, bus, clock=clock)

    assert relay.flush(ids[1]) == 1
    assert bus.published == [added[1]]
    assert relay.flush(ids[1]) == 0  # already sent
    assert outbox_events(unsent_only=True) == [added[0], added[2]]


def test_flushes_that_sent_while_a_marking_ran_are_marked_together_each_returning_once_marked(db, clock):
    """A group commit of the "sent" marks: five flushes waiting on a slow marking are marked in
    one more UPDATE, not five, and none returns before its own event is marked."""
    written = add_events(db, [f"O{n}" for n in range(6)])
    added = dict(zip(sorted(db.tables.outbox), written, strict=True))
    first, *others = added
    marking, release, marked = threading.Event(), threading.Event(), []

    def unit_of_work():
        uow = db.unit_of_work()
        mark_sent = uow.outbox.mark_sent

        def slow(ids, at):
            marked.append(sorted(ids))
            if len(marked) == 1:
                marking.set()
                release.wait(10)
            mark_sent(ids, at)

        uow.outbox.mark_sent = slow
        return uow

    relay = OutboxRelay(unit_of_work, RecordingBus(), clock=clock)
    unmarked_on_return = []

    def flush(message_id):  # as its commit hands it over (the store's lock is not in the way)
        assert relay.flush(CommittedEvent(message_id, added[message_id])) == 1
        unmarked_on_return.extend(m for m in [message_id] if db.tables.outbox[m][1] is None)

    threads = [threading.Thread(target=flush, args=(first,))]
    threads[0].start()
    assert marking.wait(10)
    threads += [threading.Thread(target=flush, args=(message_id,)) for message_id in others]
    for thread in threads[1:]:
        thread.start()
    deadline = time.monotonic() + 10
    while len(relay._unmarked) < len(others) and time.monotonic() < deadline:  # all waiting
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join(10)

    assert marked == [[first], others]
    assert unmarked_on_return == []
    assert all(when is not None for when in sent_at(db))


# redelivery: sent, but the steps never ran (the broker lost the message)


def trace_step(db, order_sn, step, outcome):
    with db.unit_of_work() as uow:
        uow.trace.record(order_sn, step, outcome)
        uow.commit()


def settled_at(db):
    return [row[2] for row in sorted(db.tables.outbox.values(), key=lambda row: row[0].id)]


def test_redeliver_resends_what_has_not_settled_and_settles_the_rest(db, clock):
    added = add_events(db, ["LOST", "DONE", "HALF", "DEAD"])
    trace_step(db, "DONE", "deduct_stock", "done")
    trace_step(db, "DONE", "award_points", "skipped")
    trace_step(db, "HALF", "deduct_stock", "done")
    trace_step(db, "HALF", "award_points", "failed")  # still retrying, or lost on its way back
    trace_step(db, "DEAD", "deduct_stock", "done")
    trace_step(db, "DEAD", "award_points", "dead")  # an operator's business now, not the sweep's
    bus = RecordingBus()
    relay = OutboxRelay(db.unit_of_work, bus, clock=clock, redeliver_after=timedelta(minutes=5), batch=2)
    assert relay.flush() == 4
    sent_first = sent_at(db)

    assert relay.redeliver() == 0  # too early: nothing is overdue yet
    clock.now += timedelta(minutes=6)

    bus.published.clear()
    assert relay.redeliver() == 2
    assert bus.published == [added[0], added[2]]
    assert [when is not None for when in settled_at(db)] == [False, True, False, True]
    assert [later > first for later, first in zip(sent_at(db), sent_first, strict=True)] == [
        True,
        False,
        True,
        False,
    ]
    assert relay.redeliver() == 0  # sent again just now: the wait starts over

    trace_step(db, "LOST", "deduct_stock", "done")
    trace_step(db, "LOST", "award_points", "done")
    clock.now += timedelta(minutes=6)
    bus.published.clear()
    assert relay.redeliver() == 1
    assert bus.published == [added[2]]
    assert [when is not None for when in settled_at(db)] == [True, True, False, True]


def test_sweep_sends_the_unsent_but_the_youngest_and_redelivers_the_overdue(db, clock):
    db.clock = clock
    [lost] = add_events(db, ["LOST"])
    relay = OutboxRelay(db.unit_of_work, RecordingBus(), clock=clock, redeliver_after=timedelta(seconds=30))
    assert relay.sweep() == 0  # its own commit is sending it
    clock.now += OutboxRelay.SWEEP_GRACE
    assert relay.sweep() == 1
    clock.now += timedelta(minutes=1)
    [fresh] = add_events(db, ["FRESH"])
    relay.bus = RecordingBus()
    assert relay.sweep() == 1
    assert relay.bus.published == [lost]
    clock.now += timedelta(minutes=1)
    assert relay.sweep() == 2
    assert relay.bus.published == [lost, fresh, lost]  # fresh was unsent; lost is overdue again: it never ran


def test_redelivery_stops_when_the_bus_refuses_and_never_raises(db, clock):
    add_events(db, ["O1", "O2"])
    relay = OutboxRelay(db.unit_of_work, RecordingBus(), clock=clock, redeliver_after=timedelta(seconds=1))
    relay.flush()
    clock.now += timedelta(minutes=1)
    first = sent_at(db)
    relay.bus = RecordingBus(fail_on=1)
    assert relay.redeliver() == 0
    assert sent_at(db) == first  # nothing marked: both go again on the next sweep
