"""The broker, chosen by settings in this one place, and the middleware it runs with.

``REDIS_URL`` set: a Redis broker, for ``dramatiq`` worker processes. Unset (the embedded
default): a StubBroker, which the bus pairs with an in-process worker, so the same actors
run in both.
"""

import logging
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import redis
from dramatiq import Broker, Middleware
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.errors import ConnectionFailed
from dramatiq.middleware import CurrentMessage, Retries, ShutdownNotifications, TimeLimit

from ..config import numbers

log = logging.getLogger(__name__)

#: The one queue of the fulfilment actors.
QUEUE = "fulfilment"


@dataclass(frozen=True)
class BrokerSettings:
    """What the broker and the actors read from the application settings."""

    redis_url: str = ""
    namespace: str = "gmall"
    max_retries: int = 8
    min_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 300.0
    time_limit_seconds: float = 30.0
    sweep_seconds: float = 30.0
    redeliver_seconds: float = 300.0
    heartbeat_timeout_seconds: float = 60.0
    maintenance_chance: int = 1000
    threads: int = 4

    @classmethod
    def from_settings(cls, settings: Mapping) -> "BrokerSettings":
        default = cls()
        values = {
            "redis_url": str(settings.get("REDIS_URL") or ""),
            "namespace": str(settings.get("REDIS_NAMESPACE") or default.namespace),
        }
        values.update(numbers(settings, default, (
            ("max_retries", "STEP_MAX_RETRIES", int, True),
            ("min_backoff_seconds", "STEP_MIN_BACKOFF_SECONDS", float, True),
            ("max_backoff_seconds", "STEP_MAX_BACKOFF_SECONDS", float, False),
            ("time_limit_seconds", "STEP_TIME_LIMIT_SECONDS", float, False),
            ("sweep_seconds", "OUTBOX_SWEEP_SECONDS", float, False),
            ("redeliver_seconds", "OUTBOX_REDELIVER_SECONDS", float, False),
            ("heartbeat_timeout_seconds", "REDIS_HEARTBEAT_TIMEOUT_SECONDS", float, False),
            ("maintenance_chance", "REDIS_MAINTENANCE_CHANCE", int, True),
            ("threads", "INPROCESS_WORKER_THREADS", int, False),
        )))
        return cls(**values)


def make_broker(settings: BrokerSettings, middleware: list[Middleware]) -> Broker:
    """A Redis broker on ``settings.redis_url``, else an in-process StubBroker.

    Retries back off exponentially from ``min_backoff`` to ``max_backoff``; what fails
    ``max_retries`` times more goes to the dead-letter queue. ``middleware`` comes last.
    """
    stack = [
        CurrentMessage(),
        TimeLimit(time_limit=int(settings.time_limit_seconds * 1000), interval=100),
        ShutdownNotifications(),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=max(1, int(settings.min_backoff_seconds * 1000)),
            max_backoff=int(settings.max_backoff_seconds * 1000),
        ),
        *middleware,
    ]
    if not settings.redis_url:
        return StubBroker(middleware=stack, fail_fast_default=False)
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=10)
    return RedisBroker(
        client=client,
        namespace=settings.namespace,
        middleware=stack,
        heartbeat_timeout=int(settings.heartbeat_timeout_seconds * 1000),
        maintenance_chance=settings.maintenance_chance,
    )


def ensure_reachable(redis_url: str) -> None:
    """Raise dramatiq's ConnectionFailed, with what to do, when Redis does not answer."""
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        where = redis.connection.parse_url(redis_url)
        raise ConnectionFailed(
            f"Redis at {where.get('host', '?')}:{where.get('port', 6379)} (GMALL_REDIS_URL) is unreachable: "
            f"{error}. Start Redis there or point GMALL_REDIS_URL at a running one."
        ) from None
    finally:
        client.close()


class DeadLetters(Middleware):
    """Says, in one line an operator can act on, which message was dead-lettered and why.

    ``on_dead(step, order_sn, attempts, error)`` is called too (it records the order as
    stuck), before the message leaves its queue: whoever waits for the queue to empty (the
    in-process worker's ``join``) then finds the order stuck. ``throws`` are the exceptions
    the actors fail on at once, without retries.
    Only messages of ``steps`` are an order's steps; other actors' (the flash sale's drain
    and expiry, which the next tick or sweep redoes) are left to Dramatiq's own log.
    """

    def __init__(self, on_dead: Callable[[str, str, int, BaseException | None], None],
                 throws: tuple[type[BaseException], ...] = (), steps: Collection[str] = ()):
        self.on_dead = on_dead
        self.throws = throws
        self.steps = steps

    def before_nack(self, broker, message):
        if message.actor_name not in self.steps:
            return
        error = message._exception  # set by the worker thread on the message proxy
        # Retries counts an attempt it retries or gives up on, not one failing on ``throws``.
        attempts = message.options.get("retries", 0) + (1 if isinstance(error, self.throws) else 0)
        order_sn = message.args[0] if message.args else message.kwargs.get("order_sn", "?")
        log.error(
            "DEAD-LETTERED %s(order_sn=%s) after %d attempts: %s; the order is stuck until replayed with: "
            "gmall-payment replay %s %s",
            message.actor_name, order_sn, attempts, describe(error), message.actor_name, order_sn,
        )
        self.on_dead(message.actor_name, order_sn, attempts, error)


class Periodic(Middleware):
    """In every worker process (and the in-process worker), each job at boot and then every
    ``interval`` seconds, in a thread of its own named after it, until the worker shuts
    down: ``jobs`` maps a name to ``(job, interval)`` (the outbox sweep, the flash sale's tick),
    or to ``(job, interval, False)`` for a job whose first run waits an interval instead of
    coming at boot (reconciliation and order expiry: a restarting worker need not ask anyone).
    Each job is safe to run in several workers at once."""

    def __init__(self, jobs: Mapping[str, tuple]):
        self.jobs = jobs
        self._stop = threading.Event()
        self._threads = []

    def after_worker_boot(self, broker, worker):
        self._stop.clear()
        self._threads = [threading.Thread(target=self._run, args=(name, *spec), name=f"gmall-{name}",
                                          daemon=True) for name, spec in self.jobs.items()]
        for thread in self._threads:
            thread.start()

    def before_worker_shutdown(self, broker, worker):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, name, job, interval, at_boot=True):
        if not at_boot and self._stop.wait(interval):
            return
        while True:
            try:
                job()
            except Exception:  # the job logs its own failures; this thread must outlive any
                log.exception("%s failed", name)
            if self._stop.wait(interval):
                return


def describe(error: BaseException | None) -> str:
    """``TypeName: message`` of an error, for logs and the trace."""
    if error is None:
        return "unknown error"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
