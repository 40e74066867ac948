"""The step actors and the bus that sends events to them.

One actor per step an event triggers (the routing table, ``core.events.STEPS_BY_EVENT``),
named after it and taking the order number, a plain JSON string. Each
runs the core's idempotent step (fulfilment, the automatic refund, taking points back,
closing trades, giving a flash-sale unit back), so a message delivered twice, or out of
order, takes effect once; a step that arrives before what it depends on (``StepNotReady``)
is retried with backoff like any failure, and what fails for good is dead-lettered.
"""

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

import dramatiq
from dramatiq import Broker, Worker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import join_queue
from dramatiq.middleware import CurrentMessage, Interrupt

from ...core import logfields
from ...core.errors import OrderNotFound, PaymentNotFound, StepNotReady
from ...core.events import ALL_STEPS, STEPS_BY_EVENT
from ...core.fulfilment import DEAD, FAILED
from ...ports.messaging import MessageBus
from ..metrics import METRICS
from .broker import QUEUE, BrokerSettings, describe

log = logging.getLogger(__name__)

#: Failures that no retry can mend: the message is dead-lettered at once.
PERMANENT_ERRORS = (OrderNotFound, PaymentNotFound)


class StepRunner:
    """Runs a step as its actor does, in the background ``context``, and records failures.

    ``steps`` maps each step's name to the service method that runs it on an order number.
    Done and skipped steps are traced by the services; a failed attempt and a dead-lettered
    message are traced here, in a transaction of their own. Every run is timed
    (``gmall_step_seconds``, by step and outcome: done, skipped, not_ready, failed).
    """

    def __init__(
        self,
        steps: Mapping[str, Callable[[str], bool]],
        uow: Callable,
        context: Callable = contextlib.nullcontext,
    ):
        self.steps = steps
        self.uow = uow
        self.context = context

    def run(self, step: str, order_sn: str) -> bool:
        """Run ``step`` of ``order_sn``; True if it changed something. Failures are traced, then raised."""
        if step not in self.steps:
            raise ValueError(f"unknown step {step!r}")
        started = time.perf_counter()
        try:
            with self.context(), logfields.bound(order_sn=order_sn, step=step):
                changed = self.steps[step](order_sn)
        except (Exception, Interrupt) as error:  # Interrupt: the time limit, a shutdown
            METRICS.step(
                step,
                "not_ready" if isinstance(error, StepNotReady) else "failed",
                time.perf_counter() - started,
            )
            self.record(order_sn, step, FAILED, f"attempt {_attempt()}: {describe(error)}")
            raise
        METRICS.step(step, "done" if changed else "skipped", time.perf_counter() - started)
        return changed

    def dead(self, step: str, order_sn: str, attempts: int, error: BaseException | None) -> None:
        """The last attempt failed and the message was dead-lettered: the order is stuck."""
        self.record(order_sn, step, DEAD, f"dead-lettered after {attempts} attempts: {describe(error)}")

    def record(self, order_sn: str, step: str, outcome: str, detail: str) -> None:
        """Trace an outcome; never raises (the database may be what failed)."""
        try:
            with self.context(), self.uow() as uow:
                uow.trace.record(order_sn, step, outcome, detail)
                uow.commit()
        except Exception:
            log.exception("could not trace %s %s of order %s (%s)", step, outcome, order_sn, detail)


def _attempt() -> int:
    """The number of the attempt under way: 1, then 2 on the first retry, and so on."""
    message = CurrentMessage.get_current_message()
    return 1 if message is None else message.options.get("retries", 0) + 1


def declare_actors(broker: Broker, runner: StepRunner, settings: BrokerSettings) -> dict[str, dramatiq.Actor]:
    """Declare one actor per step of the routing table on ``broker`` (never on Dramatiq's global
    broker), each running its step through ``runner``, which must run every one."""
    missing = set(ALL_STEPS) - set(runner.steps)
    if missing:
        raise ValueError(f"no service runs the steps {sorted(missing)}")
    return {
        step: dramatiq.actor(
            _actor_function(runner, step),
            broker=broker,
            actor_name=step,
            queue_name=QUEUE,
            max_retries=settings.max_retries,
            min_backoff=max(1, int(settings.min_backoff_seconds * 1000)),
            max_backoff=int(settings.max_backoff_seconds * 1000),
            time_limit=int(settings.time_limit_seconds * 1000),
            throws=PERMANENT_ERRORS,
        )
        for step in ALL_STEPS
    }


def _actor_function(runner: StepRunner, step: str):
    def run_step(order_sn: str) -> None:
        try:
            runner.run(step, order_sn)
        except StepNotReady as error:  # expected when messages overtake each other: no traceback
            raise dramatiq.Retry(str(error)) from error

    run_step.__name__ = run_step.__qualname__ = step
    return run_step


class DramatiqBus(MessageBus):
    """Publishes an event as one message per step ``routes`` (the routing table) says it triggers.

    On the embedded default (a StubBroker) it also owns the in-process worker, started
    by ``start()`` (the app calls it on its first request) or by the first publish.
    """

    def __init__(
        self,
        broker: Broker,
        actors: Mapping[str, dramatiq.Actor],
        routes: Mapping[str, Sequence[str]] = STEPS_BY_EVENT,
        threads: int = 4,
    ):
        self.broker = broker
        self.actors = actors
        self.routes = routes
        self.threads = threads
        self.worker: Worker | None = None
        self._booted = False
        self._closing = False
        self._lock = threading.Lock()

    @property
    def in_process(self) -> bool:
        return isinstance(self.broker, StubBroker)

    def publish(self, event):
        """Send every step of ``event``; a broker error propagates (the event stays unsent)."""
        for step in self.routes[event.name]:
            self.actors[step].send(event.order_sn)
        self.start()

    def start(self) -> None:
        """Start the in-process worker if this bus has one and it is not running yet, nor
        being stopped: what a job of the stopping worker publishes waits for the next start."""
        if not self.in_process or self.worker is not None:
            return
        with self._lock:
            if self.worker is None and not self._closing:
                if not self._booted:  # once per broker, as `dramatiq` boots a process once
                    self.broker.emit_after("process_boot")
                    self._booted = True
                worker = Worker(self.broker, worker_threads=self.threads, worker_timeout=100)
                worker.start()
                self.worker = worker

    def join(self, timeout: float = 60) -> None:
        """Wait until the in-process worker has handled every step message sent so far, their
        retries and what they sent in turn (tests, CLI).

        Only the steps' queue: the flash sale's queues hold messages delayed until their orders
        expire (half an hour), which the worker's own ``join`` would wait for.
        """
        if not self.in_process:
            raise RuntimeError(
                "join() waits for the in-process worker; Redis messages go to `dramatiq` workers"
            )
        if self.worker is None:
            return
        deadline = time.monotonic() + timeout
        self.broker.join(QUEUE, timeout=int(timeout * 1000))
        # A message leaves the queue before its worker thread is done with it (the acks, the
        # dead letters and the middleware after them): wait for those too.
        join_queue(self.worker.work_queue, timeout=max(0.0, deadline - time.monotonic()))

    def drain(self) -> None:
        """Before a command exits: the in-process worker, if any, runs what was published, then
        stops (on Redis, the workers run it)."""
        if self.in_process:
            self.join()
            self.close()

    def close(self) -> None:
        """Stop the in-process worker, if any (what it had not started is dropped)."""
        with self._lock:
            worker, self.worker = self.worker, None
            self._closing = True
        try:
            if worker is not None:
                worker.stop(timeout=10_000)
        finally:
            with self._lock:
                self._closing = False
