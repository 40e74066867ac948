"""The outbox relay: sends committed events to the bus, and marks them sent only then."""

import logging
from collections.abc import Callable
from datetime import datetime

log = logging.getLogger(__name__)


class OutboxRelay:
    """Publish what the outbox holds; safe to run from many places at once.

    Publishing twice is harmless because every consumer is idempotent, so the relay
    prefers sending again to losing an event: a crash after ``publish`` and before
    ``mark_sent`` resends on the next flush.
    """

    def __init__(self, uow: Callable, bus, clock: Callable[[], datetime] = datetime.now, batch: int = 100):
        self.uow = uow
        self.bus = bus
        self.clock = clock
        self.batch = batch

    def flush(self) -> int:
        """Send unsent events until none is left or the bus refuses one; return how many.

        Never raises: it runs right after commits that must not fail because of it, and
        whatever it could not send stays in the outbox for the next flush.
        """
        try:
            return self._flush()
        except Exception:
            log.exception("outbox flush failed; unsent events stay in the outbox")
            return 0

    def _flush(self) -> int:
        sent = 0
        while True:
            with self.uow() as uow:
                pending = uow.outbox.unsent(self.batch)
            if not pending:
                return sent
            accepted = []
            try:
                for message in pending:
                    self.bus.publish(message.event)
                    accepted.append(message.id)
            except Exception:
                log.exception("bus refused an event; %d left in the outbox", len(pending) - len(accepted))
                return sent + self._mark(accepted)
            sent += self._mark(accepted)

    def _mark(self, ids) -> int:
        if ids:
            with self.uow() as uow:
                uow.outbox.mark_sent(ids, self.clock())
                uow.commit()
        return len(ids)
