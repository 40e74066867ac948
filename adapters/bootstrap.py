"""The one composition root: builds every service from settings and adapters.

The web application and (later) the worker call ``bootstrap`` once; nothing here runs at
import time, so importing the package never opens a connection.
"""

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..core.fulfilment import FulfilmentService
from ..core.outbox import OutboxRelay
from ..core.payments import PaymentService
from ..plugins import alipay, mockpay
from ..ports.messaging import MessageBus
from ..ports.providers import ProviderRegistry, make_plugin_manager
from .inprocess.bus import InProcessBus

#: The providers this package ships, under their entry-point names.
BUILTIN_PROVIDERS = {"mockpay": mockpay, "alipay": alipay}


@dataclass
class Services:
    payments: PaymentService
    fulfilment: FulfilmentService
    relay: OutboxRelay
    providers: ProviderRegistry
    plugins: object  # the pluggy PluginManager
    bus: MessageBus


def enabled_providers(settings: Mapping) -> list[str] | None:
    """PROVIDERS="mockpay,alipay" limits the providers; unset means every one installed."""
    value = settings.get("PROVIDERS")
    if not value:
        return None
    names = value.split(",") if isinstance(value, str) else value
    return [name.strip() for name in names if name.strip()]


def bootstrap(settings: Mapping, uow: Callable, context: Callable = contextlib.nullcontext,
              bus: MessageBus | None = None, plugins=None) -> Services:
    """Wire the services; ``context`` wraps background work (an app context for SQL)."""
    plugins = plugins or make_plugin_manager(BUILTIN_PROVIDERS)
    providers = ProviderRegistry.from_plugins(plugins, settings, enabled_providers(settings))
    relay = OutboxRelay(uow, None)
    fulfilment = FulfilmentService(uow, after_commit=relay.flush)
    relay.bus = bus or InProcessBus(
        lambda event: fulfilment.run(event.name, event.order_sn),
        sweep=relay.flush,
        context=context,
        sweep_interval=float(settings.get("OUTBOX_SWEEP_SECONDS", 30)),
    )
    payments = PaymentService(uow, providers, after_commit=relay.flush)
    return Services(payments, fulfilment, relay, providers, plugins, relay.bus)
