"""The simulated provider site: a cashier that pays, fails or cancels, and signed notifications.

A plain WSGI app (werkzeug), so it runs mounted inside the shop (under ``/mockpay``) or on
its own. The shop must call the cashier with *absolute* ``notify_url`` and ``return_url``:
notifications are posted from a background thread, with no browser request to resolve a
relative URL against (the cashier answers 400 otherwise).

Pay scenarios exercise what a real provider does to a shop: ``normal`` notifies and retries
until the shop reads back ``success``; ``duplicate`` delivers the same signed notification
twice; ``late`` redirects the shopper at once and notifies after ``MOCKPAY_LATE_SECONDS``;
``lost`` takes the money and never notifies (the ledger still knows, for reconciliation).

The shop's server asks the sandbox about trades at ``POST /api`` (``method`` query, refund or
close), and reads answers signed like the notifications, with Alipay's codes: 10000, or 40004
with ``ACQ.TRADE_NOT_EXIST``, ``ACQ.TRADE_STATUS_ERROR``, ``ACQ.REASON_TRADE_REFUND_FEE_ERR``
(more refunded than paid), ``ACQ.DISCORDANT_REPEAT_REQUEST`` (one out_request_no, two amounts).
Showing the cashier opens the trade (it waits for the buyer, as Alipay's does), so a trade
closed before it is paid can no longer be paid there.
"""

import json
import logging
import secrets
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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
WAIT, SUCCESS, CLOSED = "WAIT_BUYER_PAY", "TRADE_SUCCESS", "TRADE_CLOSED"
API_METHODS = ("mockpay.trade.query", "mockpay.trade.refund", "mockpay.trade.close")
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
    """A trade the sandbox knows: opened on the cashier page, then paid or closed."""

    out_trade_no: str
    trade_no: str
    total_amount: Decimal
    subject: str
    gmt_payment: datetime | None
    trade_status: str = SUCCESS
    refunds: dict = field(default_factory=dict, compare=False)  # out_request_no -> Decimal

    @property
    def refunded(self) -> Decimal:
        return sum(self.refunds.values(), Decimal("0.00"))


class TradeError(Exception):
    """What the sandbox answers instead of doing it: Alipay's sub_code and a message."""

    def __init__(self, sub_code: str, message: str):
        super().__init__(f"{sub_code}: {message}")
        self.sub_code, self.message = sub_code, message


class SandboxLedger:
    """The sandbox's memory of trades: what it answers when asked, notified or not."""

    def __init__(self):
        self._trades: dict[str, SandboxTrade] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _trade_no(now: datetime) -> str:
        return f"{now:%Y%m%d}{secrets.randbelow(10**20):020d}"  # Alipay-like, 28 digits

    def open(self, request: CashierRequest, now: datetime) -> SandboxTrade:
        """The trade the cashier shows: opened (waiting for the buyer) unless known already."""
        with self._lock:
            trade = self._trades.get(request.out_trade_no)
            if trade is None:
                trade = self._trades[request.out_trade_no] = SandboxTrade(
                    request.out_trade_no, self._trade_no(now), request.total_amount, request.subject, None, WAIT,
                )
            return trade

    def pay(self, request: CashierRequest, now: datetime) -> SandboxTrade:
        """Take the money once; TradeError when the trade is paid or closed already."""
        with self._lock:
            trade = self._trades.get(request.out_trade_no)
            if trade is not None and trade.trade_status != WAIT:
                raise TradeError("ACQ.TRADE_STATUS_ERROR",
                                 f"trade {request.out_trade_no} is {'closed' if trade.trade_status == CLOSED else 'already paid'}")
            trade_no = trade.trade_no if trade else self._trade_no(now)
            trade = self._trades[request.out_trade_no] = SandboxTrade(
                request.out_trade_no, trade_no, request.total_amount, request.subject, now, SUCCESS,
            )
            return trade

    def trade(self, out_trade_no: str) -> SandboxTrade | None:
        with self._lock:
            return self._trades.get(out_trade_no)

    def _known(self, out_trade_no: str) -> SandboxTrade:
        trade = self._trades.get(out_trade_no)
        if trade is None:
            raise TradeError("ACQ.TRADE_NOT_EXIST", f"trade {out_trade_no} does not exist")
        return trade

    def query(self, out_trade_no: str) -> SandboxTrade:
        with self._lock:
            return self._known(out_trade_no)

    def close(self, out_trade_no: str) -> SandboxTrade:
        """Close a trade waiting for its buyer; it can no longer be paid."""
        with self._lock:
            trade = self._known(out_trade_no)
            if trade.trade_status != WAIT:
                raise TradeError("ACQ.TRADE_STATUS_ERROR", f"trade {out_trade_no} is {trade.trade_status}")
            trade = self._trades[out_trade_no] = replace(trade, trade_status=CLOSED)
            return trade

    def refund(self, out_trade_no: str, amount: Decimal, request_no: str) -> tuple[SandboxTrade, bool]:
        """Refund ``amount`` of a paid trade once per ``request_no``; (the trade, whether money moved).

        Refunds never exceed what was paid; the trade closes once all of it is refunded.
        """
        with self._lock:
            trade = self._known(out_trade_no)
            repeated = trade.refunds.get(request_no)
            if repeated is not None:
                if repeated != amount:
                    raise TradeError("ACQ.DISCORDANT_REPEAT_REQUEST",
                                     f"out_request_no {request_no} was for {repeated}, not {amount}")
                return trade, False
            if trade.gmt_payment is None or (trade.trade_status == CLOSED and trade.refunded == 0):
                raise TradeError("ACQ.TRADE_STATUS_ERROR", f"trade {out_trade_no} is {trade.trade_status}")
            if trade.refunded + amount > trade.total_amount:
                raise TradeError("ACQ.REASON_TRADE_REFUND_FEE_ERR",
                                 f"refunds {trade.refunded} + {amount} exceed {trade.total_amount}")
            refunds = {**trade.refunds, request_no: amount}
            status = CLOSED if sum(refunds.values()) == trade.total_amount else trade.trade_status
            trade = self._trades[out_trade_no] = replace(trade, refunds=refunds, trade_status=status)
            return trade, True


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
        self.url_map = Map([
            Rule("/cashier", endpoint="cashier", methods=["GET", "POST"]),
            Rule("/api", endpoint="api", methods=["POST"]),
        ])

    def on_cashier(self, request: Request, urls) -> Response:
        acting = request.method == "POST"  # GET (and HEAD) only show the page
        try:
            cashier = CashierRequest.from_params(request.form if acting else request.args, self.config.app_id)
        except ValueError as error:
            return _error(400, str(error))
        if not acting:
            self.ledger.open(cashier, datetime.now())
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
            try:
                trade = self.ledger.pay(cashier, datetime.now())
            except TradeError as error:
                return _error(409, error.message)
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


    def on_api(self, request: Request, urls) -> Response:
        """The shop's server asks about a trade (query), refunds it or closes it; the answer
        is signed with the sandbox's key, as its notifications are."""
        form = request.form
        method = form.get("method")
        try:
            if form.get("app_id") != self.config.app_id:
                raise TradeError("isv.invalid-app-id", f"unknown app_id {form.get('app_id')!r}")
            if method not in API_METHODS:
                raise TradeError("isv.invalid-method", f"unknown method {method!r}")
            out_trade_no = form.get("out_trade_no") or ""
            if method == "mockpay.trade.query":
                answer = self._trade_fields(self.ledger.query(out_trade_no))
            elif method == "mockpay.trade.close":
                answer = self._trade_fields(self.ledger.close(out_trade_no))
            else:
                answer = self._refund(form, out_trade_no)
            answer = {"code": "10000", "msg": "Success", **answer}
        except TradeError as error:
            answer = {"code": "40004", "msg": "Business Failed", "sub_code": error.sub_code, "sub_msg": error.message}
        answer["sign"] = signing.sign(answer, self.config.private_key)
        return Response(json.dumps(answer, ensure_ascii=False), content_type="application/json; charset=utf-8")

    def _refund(self, form, out_trade_no: str) -> dict:
        request_no = form.get("out_request_no") or ""
        if not request_no:
            raise TradeError("ACQ.INVALID_PARAMETER", "out_request_no is required")
        try:
            amount = to_amount(form.get("refund_amount"))
        except InvalidAmount as error:
            raise TradeError("ACQ.INVALID_PARAMETER", f"refund_amount: {error}") from None
        trade, fund_change = self.ledger.refund(out_trade_no, amount, request_no)
        return {
            **self._trade_fields(trade), "out_request_no": request_no, "refund_amount": format_amount(amount),
            "refund_fee": format_amount(trade.refunded), "fund_change": "Y" if fund_change else "N",
        }

    @staticmethod
    def _trade_fields(trade: SandboxTrade) -> dict:
        return {
            "out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no, "trade_status": trade.trade_status,
            "total_amount": format_amount(trade.total_amount),
        }


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
        "gmt_payment": trade.gmt_payment.strftime(TIME_FORMAT) if trade.gmt_payment else "",
        "subject": trade.subject,
        "sign_type": "RSA2",
        **changes,
    }
    params["sign"] = signing.sign(params, private_key)
    return params


def make_sandbox_app(settings: Mapping) -> SandboxApp:
    """The sandbox for these settings; keys are loaded, and threads started, only when paying."""
    return SandboxApp(MockpayConfig.from_settings(settings))
