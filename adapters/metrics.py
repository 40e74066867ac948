"""The shop's Prometheus metrics (prometheus-client), observed from outside the core.

Counters and histograms are process-wide objects, as prometheus-client wants them; ``METRICS``
says whether they move (the METRICS setting, applied by ``bootstrap``): off, every recording
call returns at once and nothing is wrapped. What is state rather than events (the outbox's
backlog, dead letters, units left) is read when scraped, by ``StateCollector``.

Several processes (gunicorn's workers, Dramatiq's): with PROMETHEUS_MULTIPROC_DIR set before
prometheus-client is imported, each process writes its values to files there and
``exposition`` sums them (``prometheus_client.multiprocess``).
"""

import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from ..core import states
from ..ports.settings import Setting

log = logging.getLogger(__name__)

#: Whether the counters move and GET /metrics answers (read by ``bootstrap`` and the webapp).
METRICS_SETTING = Setting("METRICS", True)
#: Seconds; from a cache hit to a provider that takes its time.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: The calls of a provider that go out over the network, timed.
PROVIDER_CALLS = ("checkout", "query", "refund", "close")

NOTIFICATIONS = Counter(
    "gmall_notifications",
    "Providers' notifications, by provider and what became of them",
    ["provider", "verdict", "accepted"],
)
PAYMENT_TRANSITIONS = Counter(
    "gmall_payment_transitions",
    "Committed moves of payment_info.payment_status",
    ["from_status", "to_status"],
)
REFUND_TRANSITIONS = Counter(
    "gmall_refund_transitions", "Committed moves of payment_refund.status", ["from_status", "to_status"]
)
#: The moves counted, by the name of their machine (``core.states``).
TRANSITIONS = {states.PAYMENTS.name: PAYMENT_TRANSITIONS, states.REFUNDS.name: REFUND_TRANSITIONS}
RECONCILIATION = Counter(
    "gmall_reconciliation_answers", "What the reconciliation's queries made of payments", ["outcome"]
)
EXPIRY = Counter("gmall_order_expiry", "Orders the expiry pass looked at, by what it did", ["outcome"])
CLICKS = Counter("gmall_seckill_clicks", "Flash-sale clicks, by outcome", ["outcome"])
SESSION_CHECKS = Counter(
    "gmall_session_checks",
    "Clicks' session generation checks, by how they were answered (adapters/session_cache.py)",
    ["answer"],
)
DRAINED = Histogram(
    "gmall_seckill_drain_orders",
    "Reservations settled (orders made or abandoned) per drain",
    buckets=(0, 1, 10, 50, 100, 500, 1000, 5000, 10000),
)
STEPS = Histogram(
    "gmall_step_seconds",
    "Time of each fulfilment step run, by step and outcome",
    ["step", "outcome"],
    buckets=LATENCY_BUCKETS,
)
PROVIDER_LATENCY = Histogram(
    "gmall_provider_call_seconds",
    "Time of each call to a provider, by outcome",
    ["provider", "call", "outcome"],
    buckets=LATENCY_BUCKETS,
)
PROVIDER_ERRORS = Counter(
    "gmall_provider_errors", "Provider calls that raised, by exception type", ["provider", "call", "error"]
)


class Metrics:
    """Whether the counters move; one per process, like the counters themselves."""

    def __init__(self):
        self.on = True
        self._children = {}  # (counter, label) -> its child, made once: the click's hot path

    def configure(self, on: bool) -> None:
        self.on = on

    def notification(self, provider: str, verdict: str, accepted: bool) -> None:
        if self.on:
            NOTIFICATIONS.labels(provider, verdict, str(accepted).lower()).inc()

    def transitions(self, moves: Iterable[tuple[str, object, object]]) -> None:
        """Committed status moves: (machine's name, from, to), the statuses' enums; those of
        payments and refunds are counted."""
        if not self.on:
            return
        for kind, before, after in moves:
            counter = TRANSITIONS.get(kind)
            if counter is not None:
                counter.labels(before.name.lower(), after.name.lower()).inc()

    def click(self, outcome: str) -> None:
        if self.on:
            self._increment(CLICKS, outcome)

    def session_check(self, answer: str) -> None:
        """How a click's session generation was checked: ``trusted`` (no session of the member
        ended lately: no read), ``kept`` (known here), ``read`` (the database asked) or
        ``untrusted`` (read, because nothing kept is trusted now)."""
        if self.on:
            self._increment(SESSION_CHECKS, answer)

    def _increment(self, counter: Counter, label: str) -> None:
        child = self._children.get((counter, label))
        if child is None:
            child = self._children[counter, label] = counter.labels(label)
        child.inc()

    def drained(self, settled: int) -> None:
        if self.on:
            DRAINED.observe(settled)

    def reconciled(self, outcome: str) -> None:
        if self.on:
            RECONCILIATION.labels(outcome).inc()

    def expired(self, outcome: str) -> None:
        if self.on:
            EXPIRY.labels(outcome).inc()

    def step(self, step: str, outcome: str, seconds: float) -> None:
        if self.on:
            STEPS.labels(step, outcome).observe(seconds)

    def timed_providers(self, providers: Iterable) -> None:
        """Time the network calls of each provider (its own methods, wrapped in place, once)."""
        if not self.on:
            return
        for provider in providers:
            for call in PROVIDER_CALLS:
                method = getattr(provider, call, None)
                if method is not None and not hasattr(method, "__wrapped__"):
                    setattr(provider, call, _timed_call(provider.name, call, method))


def _timed_call(provider: str, call: str, method: Callable) -> Callable:
    @functools.wraps(method)
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            result = method(*args, **kwargs)
        except Exception as error:
            PROVIDER_LATENCY.labels(provider, call, "error").observe(time.perf_counter() - started)
            PROVIDER_ERRORS.labels(provider, call, type(error).__name__).inc()
            raise
        PROVIDER_LATENCY.labels(provider, call, "ok").observe(time.perf_counter() - started)
        return result

    return timed


METRICS = Metrics()


def multiprocess_dir() -> str | None:
    """The directory the processes share their values in, if this process writes there."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


class StateCollector:
    """Gauges read at scrape time from ``sources``: name -> a function returning
    ``[(metric name, help, [({label: value}, sample), ...])]``. Each source runs in a thread of its own and
    gets ``timeout`` seconds; one that fails or is late is left out, and
    ``gmall_metrics_source_up{source}`` says 0 for it."""

    def __init__(self, sources: Mapping[str, Callable[[], list]], timeout: float):
        self.sources = sources
        self.timeout = timeout
        self.pool = ThreadPoolExecutor(max_workers=2 * max(1, len(sources)), thread_name_prefix="metrics")

    def collect(self):
        futures = {name: self.pool.submit(source) for name, source in self.sources.items()}
        wait(futures.values(), timeout=self.timeout)
        up = GaugeMetricFamily(
            "gmall_metrics_source_up", "Whether a scrape-time source answered in time", labels=["source"]
        )
        for name, future in futures.items():
            ok = future.done() and future.exception() is None
            up.add_metric([name], 1 if ok else 0)
            if not ok:
                log.warning(
                    "metrics source %s: %s",
                    name,
                    future.exception() if future.done() else "no answer in time",
                )
                continue
            for metric, text, samples in future.result():
                labels = sorted(samples[0][0]) if samples else []
                family = GaugeMetricFamily(metric, text, labels=labels)
                for sample_labels, value in samples:
                    family.add_metric([str(sample_labels[label]) for label in labels], value)
                yield family
        yield up


def exposition(state: StateCollector | None) -> bytes:
    """The text exposition: every process's values (or this one's), then the state read now."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)
    if state is not None:
        registry.register(state)
    return generate_latest(registry)
