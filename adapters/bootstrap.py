"""The one composition root: builds every service from settings and adapters.

The web application and the Dramatiq worker (``webapp/worker.py``) call ``bootstrap`` once;
nothing here runs at import time, so importing the package never opens a connection. The
broker is chosen here, from settings, before any actor exists.
"""

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from dramatiq import Broker

from ..core.fulfilment import FulfilmentService
from ..core.outbox import OutboxRelay
from ..core.payments import PaymentService
from ..plugins import alipay, mockpay
from ..ports.providers import ProviderRegistry, make_plugin_manager
from .dramatiq.actors import PERMANENT_ERRORS, DramatiqBus, StepRunner, declare_actors
from .dramatiq.broker import BrokerSettings, DeadLetters, OutboxSweeper, make_broker

#: The providers this package ships, under their entry-point names.
BUILTIN_PROVIDERS = {"mockpay": mockpay, "alipay": alipay}


@dataclass
class Services:
    payments: PaymentService
    fulfilment: FulfilmentService
    relay: OutboxRelay
    providers: ProviderRegistry
    plugins: object  # the pluggy PluginManager
    bus: DramatiqBus
    broker: Broker
    steps: StepRunner
    settings: BrokerSettings


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
    relay = OutboxRelay(uow, None, redeliver_after=timedelta(seconds=config.redeliver_seconds))
    fulfilment = FulfilmentService(uow, after_commit=relay.flush)
    steps = StepRunner(fulfilment, uow, context)

    def sweep():
        with context():
            relay.sweep()

    broker = make_broker(config, [DeadLetters(steps.dead, PERMANENT_ERRORS), OutboxSweeper(sweep, config.sweep_seconds)])
    relay.bus = DramatiqBus(broker, declare_actors(broker, steps, config), threads=config.threads)
    payments = PaymentService(uow, providers, after_commit=relay.flush)
    return Services(payments, fulfilment, relay, providers, plugins, relay.bus, broker, steps, config)
