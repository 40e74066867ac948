"""The payment-provider interface: the ``Provider`` base class and the values it exchanges
with the payment service (``CheckoutUrls`` in; ``Checkout``, ``Refund``, ``Acknowledgement`` out).

A provider subclasses ``Provider``; a plugin offers it through the hooks of ``hookspecs``, and
``plugins`` finds the plugins and keeps the enabled providers.
"""

import abc
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from urllib.parse import urlsplit

from ..core.bills import Bill
from ..core.errors import NotSupported
from ..core.model import Notification, Payment

#: Alipay's notify retry series after its first attempt (4m, 10m, 10m, 1h, 2h, 6h, 15h): the
#: waits between reconciliation's queries for a provider that says nothing of its own.
DEFAULT_QUERY_SCHEDULE = (240.0, 600.0, 600.0, 3600.0, 7200.0, 21600.0, 54000.0)
#: A phone's or a tablet's browser, by the words its User-Agent carries: the providers' mobile
#: checkouts (WeChat Pay's H5, Alipay's 手机网站支付) are for it, a computer gets the desktop one.
MOBILE_BROWSER = re.compile(r"Mobile|Android|iPhone|iPad|HarmonyOS", re.IGNORECASE)


@dataclass(frozen=True)
class CheckoutUrls:
    """Where the provider must send the shopper back and post its notifications, and until when
    the shopper may pay."""

    notify_url: str
    return_url: str
    #: When the order closes unpaid (the shop's clock, naive local time); None: it does not.
    #: A provider that can should refuse payment after it (Alipay's ``time_expire``), so that
    #: no money arrives for an order already closed. The payment service fills it in.
    expires_at: datetime | None = None
    #: The shopper's browser, for providers whose checkout depends on it (WeChat Pay's H5 pay, for
    #: mobile browsers, sends the shopper's IP): the address as the shop sees it, the User-Agent.
    client_ip: str | None = None
    user_agent: str = ""
    #: The shop's page the shopper chose the provider on (pay.html of the order), absolute: where
    #: a provider's phone cashier sends a shopper who leaves without paying (Alipay's quit_url).
    pay_page_url: str | None = None

    @property
    def mobile(self) -> bool:
        """Whether the shopper's browser is a phone's or a tablet's (``MOBILE_BROWSER``)."""
        return bool(MOBILE_BROWSER.search(self.user_agent or ""))


@dataclass(frozen=True)
class CheckoutForm:
    """A form the shopper's browser posts at once: the shop renders it (its own page, under its
    own Content-Security-Policy, which lets no provider's inline script run)."""

    action: str
    fields: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CheckoutQr:
    """A code the shopper scans with a phone (WeChat Pay's Native ``code_url``): the shop shows
    ``svg`` (the provider's inline SVG of it) on its own page, which polls the order and goes to
    the return page once it is paid, and says so when it expires."""

    code_url: str
    svg: str
    expires_at: datetime | None = None
    #: A page that stands in for the phone (an offline gateway's), linked from the shop's page.
    scan_url: str | None = None
    instructions: str = ""


@dataclass(frozen=True)
class Checkout:
    """How to hand the shopper to the provider: a redirect, a form to post, an HTML page
    (served as it is, under the shop's policy: no inline script), or a code to scan."""

    redirect_url: str | None = None
    html: str | None = None
    form: CheckoutForm | None = None
    qr: CheckoutQr | None = None


def origins(*urls: str) -> tuple[str, ...]:
    """The origins (``scheme://host[:port]``) of the absolute URLs among ``urls``."""
    found = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme and parts.netloc and f"{parts.scheme}://{parts.netloc}" not in found:
            found.append(f"{parts.scheme}://{parts.netloc}")
    return tuple(found)


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
    #: The seed's ``payment_info.payment_type`` (a tinyint: 1 Alipay, 2 WeChat Pay), written to
    #: ``payment_type_code`` beside the name; None for a provider the seed has no code for.
    payment_code: int | None = None
    #: Whether the payment service must confirm a "paid" notification with ``query`` before
    #: it marks the payment paid (a setting of the provider, off unless it says so).
    confirm_paid_by_query: bool = False
    #: Seconds between reconciliation's queries about a payment still unpaid (the first comes
    #: a grace period after the payment starts; one query more than waits): the provider's own
    #: notify retry series, so we ask when it would have told us.
    query_schedule: tuple[float, ...] = DEFAULT_QUERY_SCHEDULE
    #: A sandbox pays with no money (e.g. mockpay): never enabled in production unless named
    #: by PROVIDERS under STAGING_ALLOW_SANDBOXES, and left out of production's default.
    sandbox: bool = False
    #: Set when the provider pays through an offline gateway with no money (e.g. no keys
    #: configured): the setting that makes it real. PRODUCTION refuses it as it refuses a sandbox.
    offline_setting: str | None = None
    #: The request headers the provider signs its notifications with (WeChat Pay's
    #: ``Wechatpay-Signature``, ``-Timestamp``, ``-Nonce``, ``-Serial``): the notify log keeps
    #: them beside the body, so that ``notifications replay`` can verify the notification again.
    notification_headers: tuple[str, ...] = ()

    def checkout_origins(self) -> tuple[str, ...]:
        """The other sites (``scheme://host[:port]``) checkout sends the shopper's browser to,
        by a form or a redirect: the shop's Content-Security-Policy lets its forms go there.
        None by default: a relative URL is the shop's own site."""
        return ()

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

    def parse_notification_request(
        self, params: Mapping[str, str], body: str, headers: Mapping[str, str]
    ) -> Notification:
        """The notification as it was posted: its form ``params``, its raw ``body`` and its HTTP
        ``headers``; for providers that sign the body and headers (WeChat Pay). The same rules
        as ``parse_notification``, which the default calls with the form alone."""
        return self.parse_notification(params)

    def parse_replayed_notification(
        self, params: Mapping[str, str], body: str, headers: Mapping[str, str]
    ) -> Notification:
        """A notification from the notify log, handled again by an operator (``notifications
        replay``), with the headers kept with it: the same rules as ``parse_notification_request``
        but for its age. A provider that refuses old notifications (WeChat Pay: a timestamp more
        than 5 minutes from now) must not refuse a replay for that: it was verified, or refused,
        when it came; its signature is still checked. The default is ``parse_notification_request``."""
        return self.parse_notification_request(params, body, headers)

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

    def daily_bill(self, day: date) -> Bill:
        """The provider's bill of ``day`` (its own time zone's day): every trade paid and refund
        made then (``core.bill_runs`` compares it with ours). Raise ``ProviderError`` when it
        cannot be had (not ready yet, refused, unreachable, unreadable)."""
        raise NotSupported(f"{self.name} keeps no bills")
