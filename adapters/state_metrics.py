"""The gauges that are state, read when /metrics is scraped (``metrics.StateCollector``).

Each source is one bounded read: the outbox's unsent events (the ``ix_outbox_unsent``
index), the broker's dead letters (three Redis counts per queue, on Redis only), and the
units left of each sale open now (the sales of the moment, then one gate read each).
"""

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

from .bootstrap import Services
from .dramatiq.broker import QUEUE
from .dramatiq.monitor import queue_depths
from .dramatiq.seckill import DRAIN_QUEUE, EXPIRY_QUEUE
from .sql import queries


def state_sources(
    services: Services, context: Callable = contextlib.nullcontext
) -> dict[str, Callable[[], list]]:
    """The sources of ``StateCollector``, each run in ``context`` (an app context for SQL)."""

    def in_context(read):
        def run():
            with context():
                return read()

        return run

    sources = {"outbox": in_context(_outbox), "seckill": in_context(lambda: _units_left(services))}
    if services.heartbeat is not None:  # the broker is Redis
        sources["dead_letters"] = lambda: _dead_letters(services)
    return sources


def _outbox() -> list:
    backlog = queries.outbox_backlog()
    oldest = backlog["oldest_unsent"]
    age = (datetime.now() - datetime.fromisoformat(oldest)).total_seconds() if oldest else 0.0
    return [
        (
            "gmall_outbox_unsent",
            "Events written but not yet accepted by the broker",
            [({}, backlog["unsent"])],
        ),
        (
            "gmall_outbox_oldest_unsent_seconds",
            "Age of the oldest unsent event (0: none)",
            [({}, max(0.0, age))],
        ),
    ]


def _dead_letters(services: Services) -> list:
    depths = queue_depths(
        services.heartbeat.client, services.broker_settings.namespace, (QUEUE, DRAIN_QUEUE, EXPIRY_QUEUE)
    )
    return [
        (
            "gmall_dead_letters",
            "Messages dead-lettered, per queue",
            [({"queue": queue}, counts["dead"]) for queue, counts in depths.items()],
        ),
        (
            "gmall_queue_waiting",
            "Messages waiting for a worker, per queue",
            [({"queue": queue}, counts["waiting"]) for queue, counts in depths.items()],
        ),
    ]


def _units_left(services: Services) -> list:
    now = services.seckill.clock()
    open_now = [
        (sale, units)
        for sale, units in services.seckill.showcase(timedelta(0))
        if sale.start <= now and units is not None
    ]
    return [
        (
            "gmall_seckill_units_left",
            "Units left in the gate, per open sale",
            [({"sale": sale.id, "sku": sale.sku_id}, units) for sale, units in open_now],
        )
    ]
