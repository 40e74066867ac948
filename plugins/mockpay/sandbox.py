"""The simulated provider site: a cashier that pays, fails or cancels, and signed notifications.

A plain WSGI app (werkzeug), so it runs mounted inside the shop (under ``/mockpay``) or on
its own. The shop must call the cashier with *absolute* ``notify_url`` and ``return_url``:
notifications are posted from a background thread, with no browser request to resolve a
relative URL against (the cashier answers 400 otherwise).

Pay scenarios exercise what a real provider does to a shop: ``normal`` notifies and retries
until the shop reads back ``success``; ``duplicate`` delivers the same signed notification
twice; ``late`` redirects the shopper at once and notifies after ``MOCKPAY_LATE_SECONDS``;
``lost`` takes the money and never notifies (the ledger still knows, for reconciliation).
"""

import logging
import secrets
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from ...core.errors import InvalidAmount
from ...core.money import format_amount, to_amount
from .. import signing
from ..protocol import TIME_FORMAT
from ..sitekit import Notifier, Site, error_page, page, require_absolute_url, with_query
from .common import MockpayConfig

log = logging.getLogger(__name__)

ACTIONS = ("pay", "fail", "cancel")
SCENARIOS = ("normal", "duplicate", "late", "lost")
CASHIER_FIELDS = ("app_id", "out_trade_no", "total_amount", "subject", "notify_url", "return_url")


@dataclass(frozen=True)
class CashierRequest:
    """What the shop asked the cashier to collect, checked."""

    out_trade_no: str
    total_amount: Decimal
    subject: str
    notify_url: str
    return_url: str

    @classmethod
    def from_params(cls, params: Mapping[str, str], app_id: str) -> "CashierRequest":
        """Parse the cashier's query (or its form); ValueError says what the shop got wrong."""
        missing = [name for name in CASHIER_FIELDS if not params.get(name)]
        if missing:
            raise ValueError("missing " + ", ".join(missing))
        if params["app_id"] != app_id:
            raise ValueError(f"unknown app_id {params['app_id']!r}")
        try:
            total_amount = to_amount(params["total_amount"])
        except InvalidAmount as error:
            raise ValueError(str(error)) from None
        return cls(
            out_trade_no=params["out_trade_no"],
            total_amount=total_amount,
            subject=params["subject"],
            notify_url=require_absolute_url("notify_url", params["notify_url"]),
            return_url=require_absolute_url("return_url", params["return_url"]),
        )


@dataclass(frozen=True)
class SandboxTrade:
    """A trade the sandbox took (pretend) money for."""

    out_trade_no: str
    trade_no: str
    total_amount: Decimal
    subject: str
    gmt_payment: datetime
    trade_status: str = "TRADE_SUCCESS"


class SandboxLedger:
    """The sandbox's memory of paid trades: what it answers when asked, notified or not."""

    def __init__(self):
        self._trades: dict[str, SandboxTrade] = {}
        self._lock = threading.Lock()

    def pay(self, request: CashierRequest, now: datetime) -> SandboxTrade | None:
        """Take the money once: the new trade, or None when this out_trade_no is already paid."""
        with self._lock:
            if request.out_trade_no in self._trades:
                return None
            trade = SandboxTrade(
                out_trade_no=request.out_trade_no,
                trade_no=f"{now:%Y%m%d}{secrets.randbelow(10**20):020d}",  # Alipay-like, 28 digits
                total_amount=request.total_amount,
                subject=request.subject,
                gmt_payment=now,
            )
            self._trades[request.out_trade_no] = trade
            return trade

    def trade(self, out_trade_no: str) -> SandboxTrade | None:
        with self._lock:
            return self._trades.get(out_trade_no)


def _page(name: str, status: int = 200, **values) -> Response:
    return page(__package__, name, status, **values)


def _error(status: int, message: str) -> Response:
    return error_page(__package__, status, message)


class SandboxApp(Site):
    """The cashier as a WSGI app; ``ledger`` and ``notifier`` are public for tests and operators."""

    def __init__(self, config: MockpayConfig):
        self.config = config
        self.ledger = SandboxLedger()
        self.notifier = Notifier(config.notify_schedule, name="mockpay")
        self.url_map = Map([Rule("/cashier", endpoint="cashier", methods=["GET", "POST"])])

    def on_cashier(self, request: Request, urls) -> Response:
        acting = request.method == "POST"  # GET (and HEAD) only show the page
        try:
            cashier = CashierRequest.from_params(request.form if acting else request.args, self.config.app_id)
        except ValueError as error:
            return _error(400, str(error))
        if not acting:
            return _page(
                "cashier.html",
                action=urls.build("cashier"),
                app_id=self.config.app_id,
                out_trade_no=cashier.out_trade_no,
                total_amount=format_amount(cashier.total_amount),
                subject=cashier.subject,
                notify_url=cashier.notify_url,
                return_url=cashier.return_url,
                late_seconds=f"{self.config.late_seconds:g}",
            )
        return self._act(cashier, request.form.get("action"), request.form.get("scenario") or "normal")

    def _act(self, cashier: CashierRequest, action: str | None, scenario: str) -> Response:
        """Pay, fail or cancel, then send the shopper back to the shop at once (303)."""
        if action not in ACTIONS or scenario not in SCENARIOS:
            return _error(400, f"unknown action {action!r} or scenario {scenario!r}")
        back = {"out_trade_no": cashier.out_trade_no}
        if action == "pay":
            trade = self.ledger.pay(cashier, datetime.now())
            if trade is None:
                return _error(409, f"trade {cashier.out_trade_no} is already paid")
            self._notify(trade, cashier.notify_url, scenario)
        elif action == "cancel":
            back["cancelled"] = "1"
        return redirect(with_query(cashier.return_url, back), code=303)

    def _notify(self, trade: SandboxTrade, notify_url: str, scenario: str):
        if scenario == "lost":
            log.info("mockpay lost the notify of %s on purpose", trade.out_trade_no)
            return
        params = signed_notification(trade, self.config.app_id, self.config.private_key)
        self.notifier.send(
            notify_url,
            params,
            copies=2 if scenario == "duplicate" else 1,
            first_wait=self.config.late_seconds if scenario == "late" else None,
        )


def signed_notification(trade: SandboxTrade, app_id: str, private_key, /, **changes) -> dict[str, str]:
    """The asynchronous notification of ``trade`` as the sandbox posts it, with ``changes``, signed.

    Public so that load tests and benchmarks drive the shop with the sandbox's own messages.
    """
    params = {
        "app_id": app_id,
        "out_trade_no": trade.out_trade_no,
        "trade_no": trade.trade_no,
        "total_amount": format_amount(trade.total_amount),
        "trade_status": trade.trade_status,
        "notify_id": uuid.uuid4().hex,
        "notify_time": datetime.now().strftime(TIME_FORMAT),
        "gmt_payment": trade.gmt_payment.strftime(TIME_FORMAT),
        "subject": trade.subject,
        "sign_type": "RSA2",
        **changes,
    }
    params["sign"] = signing.sign(params, private_key)
    return params


def make_sandbox_app(settings: Mapping) -> SandboxApp:
    """The sandbox for these settings; keys are loaded, and threads started, only when paying."""
    return SandboxApp(MockpayConfig.from_settings(settings))
