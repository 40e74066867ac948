"""The one composition root: builds every service from settings and adapters.

The web application and the Dramatiq worker (``webapp/worker.py``) call ``bootstrap`` once;
nothing here runs at import time, so importing the package never opens a connection. The
broker is chosen here, from settings, before any actor exists. ``REDIS_URL`` set: the
Redis broker, the flash sale's gate and latches on Redis, rate limits counted there; unset
(the embedded default): the in-process broker and worker, gate, latches and rate limits.
"""

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from dramatiq import Broker

from ..core.closing import OrderClosing
from ..core.expiry import OrderExpiry
from ..core.fulfilment import STEPS_BY_EVENT, FulfilmentService
from ..core.outbox import OutboxRelay
from ..core.payments import PaymentService
from ..core.reconciliation import Reconciliation
from ..core.refunds import RefundService
from ..plugins import alipay, mockpay
from ..ports.providers import ProviderRegistry, make_plugin_manager
from ..ports.seckill import SaleStore, SeckillOrders
from ..seckill import service as seckill
from .config import LifecycleSettings, SeckillSettings
from .dramatiq.actors import PERMANENT_ERRORS, DramatiqBus, StepRunner, declare_actors
from .dramatiq.broker import BrokerSettings, DeadLetters, Periodic, make_broker
from .dramatiq.seckill import DramatiqExpiry, SeckillTick, declare_seckill_actors
from .inprocess.seckill import InProcessLatch, InProcessReservationGate
from .redis import connect
from .redis.latch import RedisLatch
from .redis.seckill import RedisReservationGate

log = logging.getLogger(__name__)

#: The providers this package ships, under their entry-point names.
BUILTIN_PROVIDERS = {"mockpay": mockpay, "alipay": alipay}


@dataclass
class Services:
    payments: PaymentService
    reconciliation: Reconciliation
    refunds: RefundService
    expiry: OrderExpiry
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
    rate_limit_storage: str  # the `limits` library's storage URI (webapp/limits.py)
    lifecycle: LifecycleSettings


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
    lifecycle = LifecycleSettings.from_settings(settings)
    sale_config = SeckillSettings.from_settings(settings)
    events = routes(STEPS_BY_EVENT, seckill.STEPS_BY_EVENT)
    relay = OutboxRelay(uow, None, redeliver_after=timedelta(seconds=config.redeliver_seconds), routes=events)
    fulfilment = FulfilmentService(uow, after_commit=relay.flush)
    payments = PaymentService(uow, providers, after_commit=relay.flush,
                              query_grace=timedelta(seconds=lifecycle.query_grace_seconds))
    reconciliation = Reconciliation(uow, providers, payments, batch=lifecycle.reconcile_batch)
    refunds = RefundService(uow, providers, after_commit=relay.flush)
    closing = OrderClosing(uow, after_commit=relay.flush)
    order_expiry = OrderExpiry(uow, closing, reconciliation, payments, providers,
                               timeout=timedelta(seconds=lifecycle.order_pay_timeout_seconds),
                               batch=lifecycle.expiry_batch)
    gate, latch = _coordination(config, sale_config)
    seckill_expiry = DramatiqExpiry()
    sale = seckill.SeckillService(
        gate, sales, seckill_orders, latch, closing, uow, seckill_expiry,
        pay_within=timedelta(seconds=sale_config.pay_within_seconds), claim_after=sale_config.claim_after_seconds,
        max_deliveries=sale_config.max_deliveries, batch=sale_config.batch, linger=sale_config.linger_seconds,
        preheat_ahead=timedelta(seconds=sale_config.preheat_ahead_seconds),
    )
    steps = StepRunner({
        "mark_order_paid": fulfilment.mark_order_paid,
        "deduct_stock": fulfilment.deduct_stock,
        "award_points": fulfilment.award_points,
        "auto_refund": refunds.auto_refund,
        "revoke_points": fulfilment.revoke_points,
        "close_trades": order_expiry.close_trades,
        seckill.GIVE_BACK: sale.give_back,
    }, uow, context)
    missing = {step for route in events.values() for step in route} - set(steps.steps)
    if missing:
        raise ValueError(f"no service runs the steps {sorted(missing)}")

    def in_context(job):
        def run():
            with context():
                job()
        return run

    tick = SeckillTick(sale, context)
    jobs = {"outbox-sweep": (in_context(relay.sweep), config.sweep_seconds),
            "seckill-tick": (tick, sale_config.tick_seconds)}
    if lifecycle.reconcile_seconds:  # the first run waits an interval: a restarting worker asks nobody
        jobs["reconciliation"] = (in_context(_logged(reconciliation.run)), lifecycle.reconcile_seconds, False)
    if lifecycle.expiry_seconds:
        jobs["order-expiry"] = (in_context(_logged_expiry(order_expiry.run)), lifecycle.expiry_seconds, False)
    broker = make_broker(config, [DeadLetters(steps.dead, PERMANENT_ERRORS, steps=steps.steps), Periodic(jobs)])
    relay.bus = DramatiqBus(broker, declare_actors(broker, steps, config), events, threads=config.threads)
    declare_seckill_actors(broker, sale, seckill_expiry, tick, config, context)
    return Services(payments, reconciliation, refunds, order_expiry, fulfilment, closing, sale, relay, providers,
                    plugins, relay.bus, broker, steps, config, sale_config, config.redis_url or "memory://", lifecycle)


def _logged_expiry(run):
    """An expiry pass whose results are logged, one line per order."""
    def logged():
        for result in run():
            log.info("order expiry: %s %s (%s)", result.order_sn, result.outcome, result.detail)
    return logged


def _logged(run):
    """A reconciliation pass whose results are logged, one line per payment it changed or could not ask about."""
    def logged():
        for result in run():
            if result.outcome not in ("recorded", "not_started"):
                log.info("reconciliation: payment #%s (%s %s): %s %s", result.payment.id, result.payment.payment_type,
                         result.payment.out_trade_no, result.outcome, result.detail)
    return logged


def _coordination(config: BrokerSettings, sale_config: SeckillSettings):
    """The flash sale's gate and latch: on Redis under the namespace, else in process."""
    if not config.redis_url:
        return InProcessReservationGate(limits=sale_config.click_limits), InProcessLatch()
    # A waiter blocks on its connection for up to pay_wait_seconds: the read timeout must outlast it.
    client = connect(config.redis_url, socket_connect_timeout=5, socket_timeout=sale_config.pay_wait_seconds + 10)
    prefix = f"{config.namespace}:"
    return RedisReservationGate(client, prefix, sale_config.click_limits), RedisLatch(client, prefix)
