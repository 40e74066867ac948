"""The embedded default's message bus: one background thread runs the fulfilment steps.

It behaves like a broker with a worker: ``publish`` only queues, the worker thread runs the
steps, retries a failed step with backoff, keeps what fails for good in ``dead_letters``,
and sweeps the outbox when idle.
"""

import contextlib
import logging
import queue
import threading
import time

from ...ports.messaging import MessageBus

log = logging.getLogger(__name__)


class InProcessBus(MessageBus):
    def __init__(self, handle, *, sweep=None, context=contextlib.nullcontext, retries=5, backoff=0.2,
                 sweep_interval=30.0):
        """``handle(event)`` runs an event's steps; ``sweep()`` flushes the outbox;
        ``context()`` wraps each piece of work (an app context for the SQL store)."""
        self._handle = handle
        self._sweep = sweep
        self._context = context
        self._retries = retries
        self._backoff = backoff
        self._sweep_interval = sweep_interval
        self._queue = queue.Queue()
        self._thread = None
        self._start_lock = threading.Lock()
        self.dead_letters = []

    def publish(self, event):
        self._queue.put((event, 0))
        self._ensure_worker()

    def join(self):
        """Wait until every queued event (and what it caused) has been handled."""
        self._queue.join()

    def _ensure_worker(self):
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="gmall-inprocess-worker", daemon=True)
                self._thread.start()

    def _work(self):
        while True:
            try:
                event, attempt = self._queue.get(timeout=self._sweep_interval)
            except queue.Empty:
                self._run(self._sweep)
                continue
            try:
                self._deliver(event, attempt)
            finally:
                self._queue.task_done()

    def _deliver(self, event, attempt):
        try:
            with self._context():
                self._handle(event)
        except Exception as error:
            if attempt < self._retries:
                log.info("retrying %s of order %s: %s", event.name, event.order_sn, error)
                time.sleep(self._backoff * 2**attempt)
                self._queue.put((event, attempt + 1))
                return
            log.error("gave up on %s of order %s after %d attempts: %s; it is kept in dead_letters",
                      event.name, event.order_sn, attempt + 1, error)
            self.dead_letters.append(event)

    def _run(self, work):
        if work is None:
            return
        try:
            with self._context():
                work()
        except Exception:
            log.exception("outbox sweep failed")
