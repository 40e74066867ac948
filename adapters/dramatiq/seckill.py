"""The flash sale's actors: one drains waiting reservations into orders, one expires
unpaid orders later (a delayed message); the periodic tick that drives them.

Declared by the composition root on its broker, as the step actors are. The drain and the
expiry have queues of their own, so a burst of orders never waits behind fulfilment steps
and ``DramatiqBus.join`` never waits for an expiry due in half an hour.
"""

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import dramatiq
from dramatiq import Broker

from ...ports.seckill import ExpiryScheduler
from ...seckill.service import SeckillService
from ..metrics import METRICS
from .broker import BrokerSettings

log = logging.getLogger(__name__)

DRAIN, EXPIRE = "drain_seckill", "expire_seckill_orders"
DRAIN_QUEUE, EXPIRY_QUEUE = "seckill", "seckill-expiry"
#: The expiry message comes this long after the orders' time, so they are surely due.
EXPIRY_MARGIN = timedelta(seconds=1)


class DramatiqExpiry(ExpiryScheduler):
    """Schedules expiries as delayed messages to the ``EXPIRE`` actor (set once declared)."""

    def __init__(self, clock: Callable[[], datetime] = datetime.now):
        self.clock = clock
        self.actor: dramatiq.Actor | None = None

    def schedule(self, order_sns, at):
        delay = max(0.0, (at + EXPIRY_MARGIN - self.clock()).total_seconds())
        self.actor.send_with_options(args=(list(order_sns),), delay=int(delay * 1000))


class SeckillTick:
    """The periodic job of every worker: ``service.tick()``, then a drain if a sale has
    started (the ``DRAIN`` actor is set once declared)."""

    def __init__(self, service: SeckillService, context: Callable = contextlib.nullcontext):
        self.service = service
        self.context = context
        self.drain: dramatiq.Actor | None = None

    def __call__(self) -> None:
        with self.context():
            started = self.service.tick()
        if started:
            self.drain.send()


def declare_seckill_actors(
    broker: Broker,
    service: SeckillService,
    expiry: DramatiqExpiry,
    tick: SeckillTick,
    settings: BrokerSettings,
    context: Callable = contextlib.nullcontext,
) -> dict[str, dramatiq.Actor]:
    """Declare the drain and expiry actors on ``broker``; hand them to ``tick`` and ``expiry``.

    A drain runs for at most half the actors' time limit: a longer backlog is left to the
    drains the next ticks send, which run side by side (the gate hands each its own batches).
    """
    budget = settings.time_limit_seconds / 2

    def drain_seckill() -> None:
        with context():
            METRICS.drained(service.drain(_consumer(), budget))

    def expire_seckill_orders(order_sns: list[str]) -> None:
        with context():
            closed = sum(service.expire(order_sn) for order_sn in order_sns)
        log.info("%d of %d seckill orders closed unpaid", closed, len(order_sns))

    options = {
        "broker": broker,
        "max_retries": settings.max_retries,
        "min_backoff": max(1, int(settings.min_backoff_seconds * 1000)),
        "max_backoff": int(settings.max_backoff_seconds * 1000),
        "time_limit": int(settings.time_limit_seconds * 1000),
    }
    actors = {
        DRAIN: dramatiq.actor(drain_seckill, actor_name=DRAIN, queue_name=DRAIN_QUEUE, **options),
        EXPIRE: dramatiq.actor(expire_seckill_orders, actor_name=EXPIRE, queue_name=EXPIRY_QUEUE, **options),
    }
    expiry.actor, tick.drain = actors[EXPIRE], actors[DRAIN]
    return actors


def _consumer() -> str:
    """This thread's name in the gate's consumer group: a crashed one's batches go to others."""
    return f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident()}"
