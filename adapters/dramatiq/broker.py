"""The broker, chosen by settings in this one place, and the middleware it runs with.

``REDIS_URL`` set: a Redis broker, for ``dramatiq`` worker processes. Unset (the embedded
default): a StubBroker, which the bus pairs with an in-process worker, so the same actors
run in both. The broker's Redis is REDIS_URL's, or BROKER_REDIS_URL's, or the primary the
Sentinels of BROKER_SENTINELS name (found again after a failover): Dramatiq's Redis broker
cannot use a Redis Cluster, which the gate can.
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
from redis.sentinel import Sentinel

from ...ports.settings import from_settings, setting
from ..redis import is_cluster

log = logging.getLogger(__name__)

#: The one queue of the fulfilment actors.
QUEUE = "fulfilment"


@dataclass(frozen=True)
class BrokerSettings:
    """What the broker and the actors read from the application settings."""

    #: Dramatiq's broker, the flash sale's gate and latches, the rate limits; empty: in process.
    redis_url: str = setting("REDIS_URL", "")
    namespace: str = setting("REDIS_NAMESPACE", "gmall")
    max_retries: int = setting("STEP_MAX_RETRIES", 8)
    min_backoff_seconds: float = setting("STEP_MIN_BACKOFF_SECONDS", 1.0)
    max_backoff_seconds: float = setting("STEP_MAX_BACKOFF_SECONDS", 300.0, positive=True)
    time_limit_seconds: float = setting("STEP_TIME_LIMIT_SECONDS", 30.0, positive=True)
    #: Every sweep_seconds each worker sends what the outbox still holds, and again what was
    #: sent redeliver_seconds ago but whose steps never finished.
    sweep_seconds: float = setting("OUTBOX_SWEEP_SECONDS", 30.0, positive=True)
    redeliver_seconds: float = setting("OUTBOX_REDELIVER_SECONDS", 300.0, positive=True)
    #: A worker process silent this long is dead; with maintenance on every call (Dramatiq's
    #: default is 1 in 1,000), the next fetch from a queue gives its unacknowledged messages back.
    heartbeat_timeout_seconds: float = setting("REDIS_HEARTBEAT_TIMEOUT_SECONDS", 60.0, positive=True)
    maintenance_chance: int = setting("REDIS_MAINTENANCE_CHANCE", 1_000_000)
    threads: int = setting("INPROCESS_WORKER_THREADS", 4, positive=True)
    #: Each worker process beats into Redis this often; ``gmall-payment status`` reads the beats.
    worker_heartbeat_seconds: float = setting("WORKER_HEARTBEAT_SECONDS", 5.0, positive=True)
    #: The broker's own Redis; empty: REDIS_URL's.
    broker_redis_url: str = setting("BROKER_REDIS_URL", "")
    #: "host:port,host:port" of the Sentinels that watch the broker's Redis primary; empty: a URL's.
    sentinels: str = setting("BROKER_SENTINELS", "")
    sentinel_service: str = setting("BROKER_SENTINEL_SERVICE", "gmall")

    @classmethod
    def from_settings(cls, settings: Mapping) -> "BrokerSettings":
        config = from_settings(cls, settings)
        for key, value in (
            ("BROKER_SENTINELS", config.sentinels),
            ("BROKER_REDIS_URL", config.broker_redis_url),
        ):
            if value and not config.redis_url:
                raise ValueError(f"{key} needs REDIS_URL too (the flash sale's gate and the rate limits)")
        config.sentinel_addresses  # noqa: B018 - a malformed list stops the start here, naming the setting
        if is_cluster(config.broker_redis_url) or (
            is_cluster(config.redis_url) and not (config.broker_redis_url or config.sentinels)
        ):
            raise ValueError(
                "Dramatiq's broker cannot use a Redis Cluster: with REDIS_URL on a cluster, set "
                "BROKER_REDIS_URL to a Redis server, or BROKER_SENTINELS"
            )
        return config

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        addresses = []
        for item in filter(None, (part.strip() for part in self.sentinels.split(","))):
            host, _, port = item.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"BROKER_SENTINELS: {item!r} is not host:port")
            addresses.append((host.strip("[]"), int(port)))
        return addresses


def broker_redis(settings: BrokerSettings, **options) -> redis.Redis:
    """A client of the broker's Redis with ``options``: the primary the sentinels name, else REDIS_URL's.

    Through Sentinel the pool asks the sentinels for the primary on every new connection, and a
    connection to a demoted primary fails (READONLY), so a failover needs no restart."""
    if not settings.sentinels:
        return redis.Redis.from_url(settings.broker_redis_url or settings.redis_url, **options)
    timeouts = {key: options[key] for key in ("socket_timeout", "socket_connect_timeout") if key in options}
    sentinel = Sentinel(settings.sentinel_addresses, sentinel_kwargs=timeouts, **timeouts)
    return sentinel.master_for(settings.sentinel_service, **options)


class ProcessTimeLimit(TimeLimit):
    """Dramatiq's TimeLimit with one watcher per process, however many brokers boot in it.

    Dramatiq's starts a thread at each broker's process boot (it wakes every ``interval``) and
    never stops it; every app made in one process boots a broker of its own (the tests make
    hundreds: 100 left 100 threads costing 3 % of a core, idle). The watcher keys its deadlines
    by thread, so one serves every broker's worker threads."""

    _shared = None  # the watcher the process's first boot started
    _lock = threading.Lock()

    def after_process_boot(self, broker):
        with ProcessTimeLimit._lock:
            if ProcessTimeLimit._shared is None:
                super().after_process_boot(broker)
                ProcessTimeLimit._shared = self.manager
        self.manager = ProcessTimeLimit._shared


def make_broker(settings: BrokerSettings, middleware: list[Middleware]) -> Broker:
    """A Redis broker on ``settings.redis_url``, else an in-process StubBroker.

    Retries back off exponentially from ``min_backoff`` to ``max_backoff``; what fails
    ``max_retries`` times more goes to the dead-letter queue. ``middleware`` comes last.
    """
    stack = [
        CurrentMessage(),
        ProcessTimeLimit(time_limit=int(settings.time_limit_seconds * 1000), interval=100),
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
    client = broker_redis(settings, socket_connect_timeout=5, socket_timeout=10)
    return RedisBroker(
        client=client,
        namespace=settings.namespace,
        middleware=stack,
        heartbeat_timeout=int(settings.heartbeat_timeout_seconds * 1000),
        maintenance_chance=settings.maintenance_chance,
    )


def ensure_reachable(settings: BrokerSettings) -> None:
    """Raise dramatiq's ConnectionFailed, with what to do, when the broker's Redis does not answer."""
    client = broker_redis(settings, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        if settings.sentinels:
            where, setting_name = (
                f"the primary {settings.sentinel_service!r} of {settings.sentinels}",
                "BROKER_SENTINELS",
            )
        else:
            setting_name = "BROKER_REDIS_URL" if settings.broker_redis_url else "REDIS_URL"
            url = redis.connection.parse_url(settings.broker_redis_url or settings.redis_url)
            where = f"{url.get('host', '?')}:{url.get('port', 6379)}"
        raise ConnectionFailed(
            f"Redis at {where} (GMALL_{setting_name}) is unreachable: "
            f"{error}. Start Redis there or point GMALL_{setting_name} at a running one."
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

    def __init__(
        self,
        on_dead: Callable[[str, str, int, BaseException | None], None],
        throws: tuple[type[BaseException], ...] = (),
        steps: Collection[str] = (),
    ):
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
            message.actor_name,
            order_sn,
            attempts,
            describe(error),
            message.actor_name,
            order_sn,
            extra={"order_sn": order_sn, "step": message.actor_name, "message_id": message.message_id},
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
        # Each boot's threads wait on an event of their own: a thread that outlived its join
        # (a job longer than the timeout) must still stop, not be revived by the next boot.
        self._stop = stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(stop, name, *spec), name=f"gmall-{name}", daemon=True)
            for name, spec in self.jobs.items()
        ]
        for thread in self._threads:
            thread.start()

    def before_worker_shutdown(self, broker, worker):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    @staticmethod
    def _run(stop, name, job, interval, at_boot=True):
        if not at_boot and stop.wait(interval):
            return
        while True:
            try:
                job()
            except Exception:  # the job logs its own failures; this thread must outlive any
                log.exception("%s failed", name)
            if stop.wait(interval):
                return


def describe(error: BaseException | None) -> str:
    """``TypeName: message`` of an error, for logs and the trace."""
    if error is None:
        return "unknown error"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
