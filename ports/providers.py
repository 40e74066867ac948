"""The payment-provider contract: the Provider interface, its pluggy hooks and the registry.

A provider is a plugin: a module or object with ``@hookimpl`` functions, registered by the
composition root (the built-in ones) or found through the ``gmall_payment.providers``
entry-point group (any installed distribution).
"""

import abc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

import pluggy

from ..core.errors import NotSupported, UnknownProvider
from ..core.model import Notification, Payment

PROJECT = "gmall_payment"
ENTRY_POINT_GROUP = "gmall_payment.providers"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass(frozen=True)
class CheckoutUrls:
    """Where the provider must send the shopper back and post its notifications."""

    notify_url: str
    return_url: str


@dataclass(frozen=True)
class Checkout:
    """How to hand the shopper to the provider: a redirect, or an HTML page to render."""

    redirect_url: str | None = None
    html: str | None = None


@dataclass(frozen=True)
class Refund:
    """What the provider says about a refund request.

    ``refunded_total`` is everything refunded on the trade so far; ``fund_change`` is False
    when the request was a repeat of one already made (same ``request_no``): no money moved.
    """

    request_no: str
    refund_amount: Decimal
    refunded_total: Decimal
    fund_change: bool
    trade_no: str | None = None


@dataclass(frozen=True)
class Acknowledgement:
    """The exact response body a provider expects to stop retrying (or to retry)."""

    body: str
    content_type: str = "text/plain; charset=utf-8"
    status: int = 200


class Provider(abc.ABC):
    """A payment provider as the payment service sees it."""

    #: Short stable identifier, stored as ``payment_info.payment_type`` and used in URLs.
    name: str
    #: What the shopper sees on the provider's button.
    title: str
    #: Whether the payment service must confirm a "paid" notification with ``query`` before
    #: it marks the payment paid (a setting of the provider, off unless it says so).
    confirm_paid_by_query: bool = False

    @abc.abstractmethod
    def checkout(self, payment: Payment, urls: CheckoutUrls) -> Checkout:
        """Start the trade at the provider and say how to send the shopper there."""

    @abc.abstractmethod
    def parse_notification(self, params: Mapping[str, str]) -> Notification:
        """Verify the signature and the provider's own fields, then parse.

        Raise ``NotificationRejected`` with a machine-readable reason for anything that
        is not an authentic notification addressed to this shop; check the signature first
        and call a bad one ``bad_signature`` (the notify log counts any other reason as a
        notification whose signature held).
        """

    @abc.abstractmethod
    def acknowledge(self, accepted: bool) -> Acknowledgement:
        """The body that tells the provider we handled (or did not handle) the notification."""

    def query(self, payment: Payment) -> Notification:
        """Ask the provider for the trade's state; the answer takes the notification's path.

        Raise ``TradeNotFound`` when the provider has no such trade, ``ProviderError`` when it
        answers with an error or cannot be reached.
        """
        raise NotSupported(f"{self.name} cannot query trades")

    def close(self, payment: Payment) -> None:
        """Close an unpaid trade at the provider."""
        raise NotSupported(f"{self.name} cannot close trades")

    def refund(self, payment: Payment, amount: Decimal, request_no: str) -> Refund:
        """Refund ``amount``; ``request_no`` makes a repeated refund the same refund."""
        raise NotSupported(f"{self.name} cannot refund")


class ProviderSpecs:
    """Hook specifications of gmall-payment; each docstring is the hook's documentation."""

    @hookspec
    def gmall_payment_providers(self, settings: Mapping) -> Iterable[Provider]:
        """Return the providers this plugin offers, built from ``settings``.

        ``settings`` is the application's configuration mapping (keys like
        ``MOCKPAY_KEY_FILE``), plus ``INSTANCE_PATH``, the folder where a plugin may keep
        generated files. Return an empty list when the plugin is not configured.
        """

    @hookspec
    def gmall_payment_sandbox_apps(self, settings: Mapping) -> Mapping[str, object]:
        """Return simulated provider sites to serve inside the shop, as ``{prefix: wsgi_app}``.

        Only sandbox providers implement this; the web application mounts each app under its
        URL prefix (for example ``/mockpay``) so that the embedded shop runs with no
        outside service.
        """


def make_plugin_manager(builtins: Mapping[str, object] = (), load_entrypoints: bool = True):
    """Build the one plugin manager: built-in plugins first, then the entry-point group.

    ``builtins`` maps entry-point names to plugins; registering them under those names makes
    pluggy skip the same names when it loads the entry points. ``check_pending`` makes a
    misspelt hook implementation fail here instead of being silently ignored.
    """
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(ProviderSpecs)
    for name, plugin in dict(builtins).items():
        pm.register(plugin, name=name)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    pm.check_pending()
    return pm


class ProviderRegistry:
    """The enabled providers, by name, in the order the plugins returned them."""

    def __init__(self, providers: Iterable[Provider], enabled: Iterable[str] | None = None):
        allowed = None if enabled is None else set(enabled)
        self._providers = {}
        for provider in providers:
            if allowed is None or provider.name in allowed:
                self._providers.setdefault(provider.name, provider)

    @classmethod
    def from_plugins(cls, pm, settings: Mapping, enabled: Iterable[str] | None = None):
        offered = [p for result in pm.hook.gmall_payment_providers(settings=settings) for p in result]
        return cls(offered, enabled)

    def get(self, name: str) -> Provider:
        try:
            return self._providers[name]
        except KeyError:
            raise UnknownProvider(name) from None

    def __iter__(self):
        return iter(self._providers.values())

    def names(self) -> list[str]:
        return list(self._providers)
