"""The outbox relay: sends committed events to the bus, and marks them sent only then.

Units of work hand the ids of the events they commit to ``flush`` (``ports.store.UnitOfWork``),
so an event leaves with its commit; the periodic ``sweep`` sends whatever that missed.
"""

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from .events import STEPS_BY_EVENT, Event
from .fulfilment import SETTLED

log = logging.getLogger(__name__)


class CommittedEvent(int):
    """The outbox id of an event a unit of work wrote, carrying the event itself: the relay
    sends it as handed over, without reading back the row it has just committed. Equal to
    (and usable as) the plain id."""

    event: Event

    def __new__(cls, message_id: int, event: Event):
        made = super().__new__(cls, message_id)
        made.event = event
        return made


class OutboxRelay:
    """Publish what the outbox holds; safe to run from many places at once.

    Publishing twice is harmless because every consumer is idempotent, so the relay
    prefers sending again to losing an event: a crash after ``publish`` and before
    ``mark_sent`` resends on the next flush, and an event whose steps left no settled
    outcome in the fulfilment trace ``redeliver_after`` its sending is sent again (the
    broker lost it: Redis restarted empty, a worker died holding it). ``routes`` names the
    steps each event triggers, as the bus sends them (``events.STEPS_BY_EVENT``).
    """

    #: The sweep leaves events this young to the commit that wrote them (it sends them at once).
    SWEEP_GRACE = timedelta(seconds=5)

    def __init__(
        self,
        uow: Callable,
        bus,
        clock: Callable[[], datetime] = datetime.now,
        batch: int = 100,
        redeliver_after: timedelta = timedelta(minutes=5),
        routes: Mapping[str, Sequence[str]] = STEPS_BY_EVENT,
    ):
        self.uow = uow
        self.routes = routes
        self.bus = bus
        self.clock = clock
        self.batch = batch
        self.redeliver_after = redeliver_after
        self._unmarked: list[int] = []  # sent, waiting for the next marking to take them
        self._adding = threading.Lock()  # guards _unmarked
        self._marking = threading.Lock()  # one marking at a time

    def flush(self, *ids: int) -> int:
        """Send unsent events (only these ``ids`` if given) until none is left or the bus
        refuses one; return how many were sent.

        Never raises: it runs right after commits that must not fail because of it, and
        whatever it could not send stays in the outbox for the next flush.
        """
        return self._safe_flush(ids or None, None)

    def sweep(self) -> int:
        """The periodic pass: send what is left unsent (but the events written in the last
        SWEEP_GRACE, which their own commit is sending), then what was sent but never settled."""
        return self._safe_flush(None, self.clock() - self.SWEEP_GRACE) + self.redeliver()

    def redeliver(self) -> int:
        """Send again events sent ``redeliver_after`` ago whose steps have not all settled
        (done, skipped or dead in the trace); mark the others settled. Never raises."""
        try:
            return self._redeliver()
        except Exception:
            log.exception("outbox redelivery failed; it is tried again on the next sweep")
            return 0

    def _safe_flush(self, ids, created_before) -> int:
        try:
            return self._flush(ids, created_before)
        except Exception:
            log.exception("outbox flush failed; unsent events stay in the outbox")
            return 0

    def _flush(self, ids, created_before) -> int:
        if ids and all(isinstance(message_id, CommittedEvent) for message_id in ids):
            # Handed over by the commit that wrote them: sent as they are, without reading back
            # what was just committed, and the job is done.
            return self._send([(message_id, message_id.event) for message_id in ids])[0]
        sent = 0
        while True:
            with self.uow() as uow:
                pending = uow.outbox.unsent(self.batch, ids=ids)
            due = [m for m in pending if created_before is None or m.created_at < created_before]
            if not due:
                return sent
            done, refused = self._send([(m.id, m.event) for m in due])
            sent += done
            if refused or len(due) < len(pending):  # the bus refused one, or the rest is younger still
                return sent

    def _send(self, messages) -> tuple[int, bool]:
        """Publish ``messages`` ((id, event) pairs) in order until the bus refuses one, and mark
        those it took as sent: (how many, whether it refused one)."""
        accepted = []
        try:
            for message_id, event in messages:
                self.bus.publish(event)
                accepted.append(int(message_id))
        except Exception:
            log.exception("bus refused an event; %d left in the outbox", len(messages) - len(accepted))
            return self._mark(accepted), True
        return self._mark(accepted), False

    def _redeliver(self) -> int:
        resent = 0
        while True:
            with self.uow() as uow:
                due = uow.outbox.unsettled(self.clock() - self.redeliver_after, self.batch)
                unfinished = [message for message in due if not self._settled(uow, message.event)]
            finished = [message.id for message in due if message not in unfinished]
            if finished:
                with self.uow() as uow:
                    uow.outbox.settle(finished, self.clock())
                    uow.commit()
            for message in unfinished:
                log.warning(
                    "%s of order %s was sent at %s but its steps have not finished: sending it again",
                    message.event.name,
                    message.event.order_sn,
                    message.sent_at,
                )
                try:
                    self.bus.publish(message.event)
                except Exception:
                    log.exception("bus refused a redelivery; it is tried again on the next sweep")
                    return resent
                resent += self._mark([message.id])
            if len(due) < self.batch:
                return resent

    def _settled(self, uow, event) -> bool:
        outcomes = {entry.step for entry in uow.trace.for_order(event.order_sn) if entry.outcome in SETTLED}
        return all(step in outcomes for step in self.routes[event.name])

    def _mark(self, ids) -> int:
        """Mark ``ids`` sent, in one UPDATE with those of every flush that sent events while
        the last marking ran (a group commit: under load, one marking for many notifications
        instead of one each); return how many. Each caller returns once its own ids are written,
        by itself or by the marking that took them. A marking that fails leaves its events
        unsent in the outbox: the sweep sends them again (consumers are idempotent)."""
        if not ids:
            return 0
        with self._adding:
            batch = self._unmarked
            batch.extend(ids)
        with self._marking:
            with self._adding:
                mine = batch is self._unmarked  # else the marking that just ended took it
                if mine:
                    self._unmarked = []
            if mine:
                with self.uow() as uow:
                    uow.outbox.mark_sent(batch, self.clock())
                    uow.commit()
        return len(ids)
