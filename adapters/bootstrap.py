"""The one composition root: builds every service from settings and adapters.

The web application and the Dramatiq worker (``webapp/worker.py``) call ``bootstrap`` once;
nothing here runs at import time, so importing the package never opens a connection. The
broker is chosen here, from settings, before any actor exists.
"""

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from dramatiq import Broker

from ..core.closing import OrderClosing
from ..core.expiry import OrderExpiry
from ..core.fulfilment import FulfilmentService
from ..core.outbox import OutboxRelay
from ..core.payments import PaymentService
from ..core.reconciliation import Reconciliation
from ..core.refunds import RefundService
from ..plugins import alipay, mockpay
from ..ports.providers import ProviderRegistry, make_plugin_manager
from .dramatiq.actors import PERMANENT_ERRORS, DramatiqBus, StepRunner, declare_actors
from .dramatiq.broker import BrokerSettings, DeadLetters, PeriodicTask, PeriodicTasks, make_broker

log = logging.getLogger(__name__)

#: The providers this package ships, under their entry-point names.
BUILTIN_PROVIDERS = {"mockpay": mockpay, "alipay": alipay}


@dataclass(frozen=True)
class LifecycleSettings:
    """What reconciliation (and the rest of a payment's life after checkout) reads from settings."""

    query_grace_seconds: float = 300.0
    reconcile_seconds: float = 60.0
    reconcile_batch: int = 100
    order_pay_timeout_seconds: float = 1800.0
    expiry_seconds: float = 60.0
    expiry_batch: int = 100

    @classmethod
    def from_settings(cls, settings: Mapping) -> "LifecycleSettings":
        default = cls()
        values = {}
        for field, key, kind, may_be_zero in (
            ("query_grace_seconds", "RECONCILE_GRACE_SECONDS", float, True),
            ("reconcile_seconds", "RECONCILE_SECONDS", float, True),
            ("reconcile_batch", "RECONCILE_BATCH", int, False),
            ("order_pay_timeout_seconds", "ORDER_PAY_TIMEOUT", float, False),
            ("expiry_seconds", "EXPIRY_SECONDS", float, True),
            ("expiry_batch", "EXPIRY_BATCH", int, False),
        ):
            value = kind(settings.get(key, getattr(default, field)))
            if value < 0 or (value == 0 and not may_be_zero):
                raise ValueError(f"{key} must be a number {'>=' if may_be_zero else '>'} 0, got {value!r}")
            values[field] = value
        return cls(**values)


@dataclass
class Services:
    payments: PaymentService
    reconciliation: Reconciliation
    refunds: RefundService
    closing: OrderClosing
    expiry: OrderExpiry
    fulfilment: FulfilmentService
    relay: OutboxRelay
    providers: ProviderRegistry
    plugins: object  # the pluggy PluginManager
    bus: DramatiqBus
    broker: Broker
    steps: StepRunner
    settings: BrokerSettings
    lifecycle: LifecycleSettings


def enabled_providers(settings: Mapping) -> list[str] | None:
    """PROVIDERS="mockpay,alipay" limits the providers; unset means every one installed."""
    value = settings.get("PROVIDERS")
    if not value:
        return None
    names = value.split(",") if isinstance(value, str) else value
    return [name.strip() for name in names if name.strip()]


def bootstrap(settings: Mapping, uow: Callable, context: Callable = contextlib.nullcontext,
              plugins=None) -> Services:
    """Wire the services; ``context`` wraps background work (an app context for SQL)."""
    plugins = plugins or make_plugin_manager(BUILTIN_PROVIDERS)
    providers = ProviderRegistry.from_plugins(plugins, settings, enabled_providers(settings))
    config = BrokerSettings.from_settings(settings)
    lifecycle = LifecycleSettings.from_settings(settings)
    relay = OutboxRelay(uow, None, redeliver_after=timedelta(seconds=config.redeliver_seconds))
    fulfilment = FulfilmentService(uow, after_commit=relay.flush)
    payments = PaymentService(uow, providers, after_commit=relay.flush,
                              query_grace=timedelta(seconds=lifecycle.query_grace_seconds))
    reconciliation = Reconciliation(uow, providers, payments, batch=lifecycle.reconcile_batch)
    refunds = RefundService(uow, providers, after_commit=relay.flush)
    closing = OrderClosing(uow, after_commit=relay.flush)
    expiry = OrderExpiry(uow, closing, reconciliation, payments, providers,
                         timeout=timedelta(seconds=lifecycle.order_pay_timeout_seconds), batch=lifecycle.expiry_batch)
    steps = StepRunner({
        "mark_order_paid": fulfilment.mark_order_paid,
        "deduct_stock": fulfilment.deduct_stock,
        "award_points": fulfilment.award_points,
        "auto_refund": refunds.auto_refund,
        "revoke_points": fulfilment.revoke_points,
        "close_trades": expiry.close_trades,
    }, uow, context)

    def in_context(task):
        def run():
            with context():
                task()
        return run

    periodic = [PeriodicTask("outbox-sweeper", in_context(relay.sweep), config.sweep_seconds)]
    if lifecycle.reconcile_seconds:
        periodic.append(PeriodicTask("reconciliation", in_context(_logged(reconciliation.run)),
                                     lifecycle.reconcile_seconds, at_boot=False))
    if lifecycle.expiry_seconds:
        periodic.append(PeriodicTask("order-expiry", in_context(_logged_expiry(expiry.run)), lifecycle.expiry_seconds,
                                     at_boot=False))
    broker = make_broker(config, [DeadLetters(steps.dead, PERMANENT_ERRORS), PeriodicTasks(periodic)])
    relay.bus = DramatiqBus(broker, declare_actors(broker, steps, config), threads=config.threads)
    return Services(payments, reconciliation, refunds, closing, expiry, fulfilment, relay, providers, plugins,
                    relay.bus, broker, steps, config, lifecycle)


def _logged_expiry(run):
    def logged():
        for result in run():
            log.info("order expiry: %s %s (%s)", result.order_sn, result.outcome, result.detail)
    return logged


def _logged(run):
    """A pass whose results are logged, one line per payment it changed or could not ask about."""
    def logged():
        for result in run():
            if result.outcome not in ("recorded", "not_started"):
                log.info("reconciliation: payment #%s (%s %s): %s %s", result.payment.id, result.payment.payment_type,
                         result.payment.out_trade_no, result.outcome, result.detail)
    return logged
