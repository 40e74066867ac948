"""Readiness probes: can this process reach what it depends on, right now?

A probe is a callable that returns when its dependency answered and raises when it did not.
Each talks to its dependency on a client of its own with short timeouts, so a probe never
waits on a connection the shop's own work holds; the webapp runs them under one deadline
(``webapp/health.py``).
"""

from collections.abc import Callable

from dramatiq.brokers.redis import RedisBroker
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import text

from .bootstrap import Services
from .dramatiq.broker import broker_redis
from .redis import connect


def probes(engine, services: Services, timeout: float) -> dict[str, Callable[[], None]]:
    """The database always; the gate's Redis and the broker's when the shop uses Redis."""
    checks = {"database": lambda: _select_one(engine)}
    settings = services.broker_settings
    # A client of the probe's own per dependency: ``timeout`` for every step and no retries.
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "retry": Retry(NoBackoff(), 0)}
    if settings.redis_url:
        checks["redis"] = lambda: _ping_once(settings.redis_url, options)
    if isinstance(services.broker, RedisBroker):
        checks["broker"] = broker_redis(settings, **options).ping
    return checks


def _ping_once(url: str, options: dict) -> None:
    """PING on a client made for it: a cluster's client asks for the slot map when made."""
    client = connect(url, **options)
    try:
        client.ping()
    finally:
        client.close()


def _select_one(engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
