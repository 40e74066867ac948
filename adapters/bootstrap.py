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
from datetime import datetime, timedelta

from dramatiq import Broker

from ..core import events
from ..core.bill_runs import BillReconciliation
from ..core.closing import OrderClosing
from ..core.expiry import OrderExpiry, pay_deadline
from ..core.fulfilment import FulfilmentService
from ..core.model import Order
from ..core.outbox import OutboxRelay
from ..core.payments import PaymentService
from ..core.reconciliation import Reconciliation
from ..core.refunds import RefundService
from ..plugins import alipay, mockpay
from ..ports.plugins import ProviderRegistry, make_plugin_manager
from ..ports.seckill import SaleStore, SeckillOrders
from ..ports.store import relayed
from ..seckill import service as seckill
from .config import LifecycleSettings, SeckillSettings
from .dramatiq.actors import PERMANENT_ERRORS, DramatiqBus, StepRunner, declare_actors
from .dramatiq.broker import BrokerSettings, DeadLetters, Periodic, broker_redis, make_broker
from .dramatiq.monitor import Heartbeat
from .dramatiq.seckill import DramatiqExpiry, SeckillTick, declare_seckill_actors
from .inprocess.seckill import InProcessLatch, InProcessReservationGate
from .metrics import METRICS, METRICS_SETTING
from .redis import connect
from .redis.latch import RedisLatch
from .redis.seckill import RedisReservationGate
from .redis.sessions import SessionChannel

log = logging.getLogger(__name__)

#: The providers this package ships, under their entry-point names.
BUILTIN_PROVIDERS = {"mockpay": mockpay, "alipay": alipay}
#: How often each worker looks whether yesterday's bills are due (BILLS_FETCH): once read, not again.
BILLS_CHECK_SECONDS = 600.0


@dataclass(kw_only=True)
class Services:
    """What ``bootstrap`` builds, by name: the services, the plumbing they run on, and the
    settings they were built with."""

    # The domain's services.
    payments: PaymentService
    reconciliation: Reconciliation
    bills: BillReconciliation  # the providers' daily bills against our payments and refunds
    refunds: RefundService
    order_expiry: OrderExpiry  # closes orders unpaid past ORDER_PAY_TIMEOUT_SECONDS
    fulfilment: FulfilmentService
    order_closing: OrderClosing
    seckill: seckill.SeckillService
    # The providers and the plumbing.
    providers: ProviderRegistry  # the enabled providers
    plugin_manager: object  # the pluggy PluginManager every provider is registered with
    relay: OutboxRelay  # sends the outbox's events to the bus
    bus: DramatiqBus
    broker: Broker
    steps: StepRunner  # runs each step an event triggers, by its name
    heartbeat: Heartbeat | None = None  # the workers' liveness on Redis; None in process
    sessions_ended: SessionChannel | None = None  # logouts announced on Redis; None in process
    # The settings they were read from.
    broker_settings: BrokerSettings  # Redis, the broker, the outbox's sweeps, the workers
    lifecycle_settings: LifecycleSettings  # reconciliation and order expiry
    seckill_settings: SeckillSettings
    rate_limit_storage: str  # the `limits` library's storage URI (webapp/limits.py)


def enabled_providers(settings: Mapping) -> list[str] | None:
    """PROVIDERS="mockpay,alipay" limits the providers; unset means every one installed."""
    value = settings.get("PROVIDERS")
    if not value:
        return None
    names = value.split(",") if isinstance(value, str) else value
    return [name.strip() for name in names if name.strip()]


def provider_registry(settings: Mapping, plugins) -> ProviderRegistry:
    """The enabled providers: PROVIDERS, else every one installed (less the sandboxes in PRODUCTION)."""
    return ProviderRegistry.from_plugins(
        plugins, settings, enabled_providers(settings), sandboxes=not settings.get("PRODUCTION")
    )


def _closes_unpaid(timeout: timedelta, seckill_orders: SeckillOrders) -> Callable[[Order], datetime | None]:
    """When an order closes unpaid: ORDER_PAY_TIMEOUT_SECONDS after it was placed, or, for a flash-sale
    order, SECKILL_PAY_WITHIN_SECONDS after its click when that comes first."""

    def deadline(order: Order) -> datetime | None:
        record = seckill_orders.get(order.order_sn)
        times = (pay_deadline(order, timeout), record.expires_at if record else None)
        return min((time for time in times if time is not None), default=None)

    return deadline


def bootstrap(
    settings: Mapping,
    uow: Callable,
    *,
    sales: SaleStore,
    seckill_orders: SeckillOrders,
    context: Callable = contextlib.nullcontext,
    plugins=None,
) -> Services:
    """Wire the services; ``context`` wraps background work (an app context for SQL)."""
    plugins = plugins or make_plugin_manager(BUILTIN_PROVIDERS)
    METRICS.configure(METRICS_SETTING.read(settings))
    providers = provider_registry(settings, plugins)
    METRICS.timed_providers(providers)
    config = BrokerSettings.from_settings(settings)
    lifecycle = LifecycleSettings.from_settings(settings)
    sale_config = SeckillSettings.from_settings(settings)
    relay = OutboxRelay(uow, None, redeliver_after=timedelta(seconds=config.redeliver_seconds))
    uow = relayed(uow, relay.flush)  # the services' units of work: their events leave with each commit
    fulfilment = FulfilmentService(uow)
    pay_timeout = timedelta(seconds=lifecycle.order_pay_timeout_seconds)
    payments = PaymentService(
        uow,
        providers,
        query_grace=timedelta(seconds=lifecycle.query_grace_seconds),
        pay_deadline=_closes_unpaid(pay_timeout, seckill_orders),
    )
    reconciliation = Reconciliation(uow, providers, payments, batch=lifecycle.reconcile_batch)
    refunds = RefundService(uow, providers)
    payments.refund_notices = refunds.apply_notice
    bills = BillReconciliation(uow, providers, payments, refunds)
    closing = OrderClosing(uow)
    order_expiry = OrderExpiry(
        uow, closing, reconciliation, payments, providers, timeout=pay_timeout, batch=lifecycle.expiry_batch
    )
    gate, latch, sessions_ended = _coordination(config, sale_config)
    seckill_expiry = DramatiqExpiry()
    sale = seckill.SeckillService(
        gate,
        sales,
        seckill_orders,
        latch,
        closing,
        uow,
        seckill_expiry,
        pay_within=timedelta(seconds=sale_config.pay_within_seconds),
        claim_after=sale_config.claim_after_seconds,
        max_deliveries=sale_config.max_deliveries,
        batch=sale_config.batch,
        linger=sale_config.linger_seconds,
        preheat_ahead=timedelta(seconds=sale_config.preheat_ahead_seconds),
    )
    steps = StepRunner(
        {
            events.MARK_ORDER_PAID: fulfilment.mark_order_paid,
            events.DEDUCT_STOCK: fulfilment.deduct_stock,
            events.AWARD_POINTS: fulfilment.award_points,
            events.AUTO_REFUND: refunds.auto_refund,
            events.REVOKE_POINTS: fulfilment.revoke_points,
            events.CLOSE_TRADES: order_expiry.close_trades,
            events.GIVE_BACK_SECKILL_UNIT: sale.give_back,
        },
        uow,
        context,
    )

    def in_context(job):
        def run():
            with context():
                job()

        return run

    tick = SeckillTick(sale, context)
    jobs = {
        "outbox-sweep": (in_context(relay.sweep), config.sweep_seconds),
        "seckill-tick": (tick, sale_config.tick_seconds),
    }
    if lifecycle.reconcile_seconds:  # the first run waits an interval: a restarting worker asks nobody
        jobs["reconciliation"] = (in_context(_logged(reconciliation.run)), lifecycle.reconcile_seconds, False)
    if lifecycle.expiry_seconds:
        jobs["order-expiry"] = (in_context(_logged_expiry(order_expiry.run)), lifecycle.expiry_seconds, False)
    if lifecycle.bills_fetch:  # each morning from BILLS_FETCH_HOUR, until yesterday's bills are read
        jobs["bills"] = (
            in_context(lambda: bills.scheduled(lifecycle.bills_fetch_hour)),
            BILLS_CHECK_SECONDS,
            False,
        )
    heartbeat = None
    if config.redis_url:
        # The beats and the queues `status` reads are the broker's: on its Redis.
        client = broker_redis(config, decode_responses=True, socket_connect_timeout=5, socket_timeout=5)
        heartbeat = Heartbeat(client, config.namespace, config.worker_heartbeat_seconds)
        jobs["heartbeat"] = (heartbeat.beat, config.worker_heartbeat_seconds)
    broker = make_broker(
        config, [DeadLetters(steps.dead, PERMANENT_ERRORS, steps=steps.steps), Periodic(jobs)]
    )
    relay.bus = DramatiqBus(broker, declare_actors(broker, steps, config), threads=config.threads)
    declare_seckill_actors(broker, sale, seckill_expiry, tick, config, context)
    return Services(
        payments=payments,
        reconciliation=reconciliation,
        bills=bills,
        refunds=refunds,
        order_expiry=order_expiry,
        fulfilment=fulfilment,
        order_closing=closing,
        seckill=sale,
        providers=providers,
        plugin_manager=plugins,
        relay=relay,
        bus=relay.bus,
        broker=broker,
        steps=steps,
        heartbeat=heartbeat,
        sessions_ended=sessions_ended,
        broker_settings=config,
        lifecycle_settings=lifecycle,
        seckill_settings=sale_config,
        rate_limit_storage=config.redis_url or "memory://",
    )


def _logged_expiry(run):
    """An expiry pass whose results are logged, one line per order, and counted."""

    def logged():
        for result in run():
            METRICS.expired(result.outcome)
            log.info("order expiry: %s %s (%s)", result.order_sn, result.outcome, result.detail)

    return logged


def _logged(run):
    """A reconciliation pass whose results are counted and logged, one line per payment it changed or could
    not ask about."""

    def logged():
        for result in run():
            METRICS.reconciled(result.outcome)
            if result.outcome not in ("recorded", "not_started"):
                log.info(
                    "reconciliation: payment #%s (%s %s): %s %s",
                    result.payment.id,
                    result.payment.payment_type,
                    result.payment.out_trade_no,
                    result.outcome,
                    result.detail,
                )

    return logged


def _coordination(config: BrokerSettings, sale_config: SeckillSettings):
    """The flash sale's gate and latch, and the channel ended sessions are announced on to every
    web process (``adapters/session_cache.py``, on the gate's client: it answers as soon as the
    gate): on Redis under the namespace, else in process (no channel)."""
    if not config.redis_url:
        return InProcessReservationGate(limits=sale_config.click_limits), InProcessLatch(), None
    # Each call on the request path answers within SECKILL_REDIS_TIMEOUT_SECONDS, or fails; a
    # waiter blocks on its connection for up to pay_wait_seconds: its read timeout outlasts that.
    timeout = sale_config.redis_timeout_seconds
    client = connect(config.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout)
    waiter = connect(
        config.redis_url,
        socket_connect_timeout=timeout,
        socket_timeout=sale_config.pay_wait_seconds + timeout,
    )
    prefix = f"{config.namespace}:"
    return (
        RedisReservationGate(client, prefix, sale_config.click_limits, timeout),
        RedisLatch(waiter, prefix),
        SessionChannel(client, f"{prefix}sessions-ended"),
    )
