"""The one composition root: builds every service from settings and adapters.

The web application and the Dramatiq worker (``webapp/worker.py``) call ``bootstrap`` once;
nothing here runs at import time, so importing the package never opens a connection. The
broker is chosen here, from settings, before any actor exists. ``REDIS_URL`` set: the
Redis broker, the flash sale's gate and latches on Redis, rate limits counted there; unset
(the embedded default): the in-process broker and worker, gate, latches and rate limits.
"""

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from dramatiq import Broker

from ..core.closing import OrderClosing
from ..core.fulfilment import ALL_STEPS, STEPS_BY_EVENT, FulfilmentService
from ..core.outbox import OutboxRelay
from ..core.payments import PaymentService
from ..plugins import alipay, mockpay
from ..ports.providers import ProviderRegistry, make_plugin_manager
from ..ports.seckill import SaleStore, SeckillOrders
from ..seckill import service as seckill
from .config import SeckillSettings
from .dramatiq.actors import PERMANENT_ERRORS, DramatiqBus, StepRunner, declare_actors
from .dramatiq.broker import BrokerSettings, DeadLetters, Periodic, make_broker
from .dramatiq.seckill import DramatiqExpiry, SeckillTick, declare_seckill_actors
from .inprocess.seckill import InProcessLatch, InProcessReservationGate
from .redis import connect
from .redis.latch import RedisLatch
from .redis.seckill import RedisReservationGate

#: The providers this package ships, under their entry-point names.
BUILTIN_PROVIDERS = {"mockpay": mockpay, "alipay": alipay}


@dataclass
class Services:
    payments: PaymentService
    fulfilment: FulfilmentService
    closing: OrderClosing
    seckill: seckill.SeckillService
    relay: OutboxRelay
    providers: ProviderRegistry
    plugins: object  # the pluggy PluginManager
    bus: DramatiqBus
    broker: Broker
    steps: StepRunner
    settings: BrokerSettings
    seckill_settings: SeckillSettings
    rate_limit_storage: str  # flask-limiter's storage URI


def enabled_providers(settings: Mapping) -> list[str] | None:
    """PROVIDERS="mockpay,alipay" limits the providers; unset means every one installed."""
    value = settings.get("PROVIDERS")
    if not value:
        return None
    names = value.split(",") if isinstance(value, str) else value
    return [name.strip() for name in names if name.strip()]


def routes(*tables: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """The steps each event triggers, from every service's table."""
    merged: dict[str, tuple[str, ...]] = {}
    for table in tables:
        for event, steps in table.items():
            merged[event] = merged.get(event, ()) + tuple(steps)
    return merged


def bootstrap(settings: Mapping, uow: Callable, *, sales: SaleStore, seckill_orders: SeckillOrders,
              context: Callable = contextlib.nullcontext, plugins=None) -> Services:
    """Wire the services; ``context`` wraps background work (an app context for SQL)."""
    plugins = plugins or make_plugin_manager(BUILTIN_PROVIDERS)
    providers = ProviderRegistry.from_plugins(plugins, settings, enabled_providers(settings))
    config = BrokerSettings.from_settings(settings)
    sale_config = SeckillSettings.from_settings(settings)
    events = routes(STEPS_BY_EVENT, seckill.STEPS_BY_EVENT)
    relay = OutboxRelay(uow, None, redeliver_after=timedelta(seconds=config.redeliver_seconds), routes=events)
    fulfilment = FulfilmentService(uow, after_commit=relay.flush)
    closing = OrderClosing(uow, after_commit=relay.flush)
    gate, latch = _coordination(config, sale_config)
    expiry = DramatiqExpiry()
    sale = seckill.SeckillService(
        gate, sales, seckill_orders, latch, closing, uow, expiry,
        pay_within=timedelta(seconds=sale_config.pay_within_seconds), claim_after=sale_config.claim_after_seconds,
        max_deliveries=sale_config.max_deliveries, batch=sale_config.batch,
        preheat_ahead=timedelta(seconds=sale_config.preheat_ahead_seconds),
    )
    steps = StepRunner({**{step: getattr(fulfilment, step) for step in ALL_STEPS}, seckill.GIVE_BACK: sale.give_back},
                       uow, context)

    def sweep():
        with context():
            relay.sweep()

    tick = SeckillTick(sale, context)
    broker = make_broker(config, [
        DeadLetters(steps.dead, PERMANENT_ERRORS, steps=steps.steps),
        Periodic({"outbox-sweep": (sweep, config.sweep_seconds), "seckill-tick": (tick, sale_config.tick_seconds)}),
    ])
    relay.bus = DramatiqBus(broker, declare_actors(broker, steps, config), events, threads=config.threads)
    declare_seckill_actors(broker, sale, expiry, tick, config, context)
    payments = PaymentService(uow, providers, after_commit=relay.flush)
    return Services(payments, fulfilment, closing, sale, relay, providers, plugins, relay.bus, broker, steps,
                    config, sale_config, config.redis_url or "memory://")


def _coordination(config: BrokerSettings, sale_config: SeckillSettings):
    """The flash sale's gate and latch: on Redis under the namespace, else in process."""
    if not config.redis_url:
        return InProcessReservationGate(), InProcessLatch()
    # A waiter blocks on its connection for up to pay_wait_seconds: the read timeout must outlast it.
    client = connect(config.redis_url, socket_connect_timeout=5, socket_timeout=sale_config.pay_wait_seconds + 10)
    prefix = f"{config.namespace}:"
    return RedisReservationGate(client, prefix), RedisLatch(client, prefix)
