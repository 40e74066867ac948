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

import http.client
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from html import escape
from importlib import resources
from string import Template
from urllib.parse import urlencode

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from ...core.errors import InvalidAmount
from ...core.money import format_amount, to_amount
from .. import signing
from .common import MockpayConfig, require_absolute_url, with_query

log = logging.getLogger(__name__)

ACTIONS = ("pay", "fail", "cancel")
SCENARIOS = ("normal", "duplicate", "late", "lost")
CASHIER_FIELDS = ("app_id", "out_trade_no", "total_amount", "subject", "notify_url", "return_url")
ACKNOWLEDGED = "success"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # Alipay's notify_time / gmt_payment format
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"


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


@dataclass(frozen=True)
class Attempt:
    """One delivery of a notification and what came back (``status`` None: no HTTP answer)."""

    url: str
    notify_id: str
    status: int | None
    body: str

    @property
    def acknowledged(self) -> bool:
        return self.status == 200 and self.body == ACKNOWLEDGED


class Notifier:
    """Posts notifications from daemon threads, retrying until the shop reads back ``success``.

    ``schedule`` is the wait in seconds before each attempt, so its length bounds the attempts
    of one delivery. ``attempts`` and ``join`` let tests and operators see what happened.
    """

    def __init__(self, schedule: Sequence[float], timeout: float = 10.0):
        self.schedule = tuple(schedule)
        self.timeout = timeout
        self._attempts: list[Attempt] = []
        self._pending = 0
        self._idle = threading.Condition()
        # The shop is called directly, as the provider would: never through the environment's proxy.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @property
    def attempts(self) -> list[Attempt]:
        with self._idle:
            return list(self._attempts)

    def send(self, url: str, params: Mapping[str, str], copies: int = 1, first_wait: float | None = None):
        """Deliver ``params`` ``copies`` times, one after the other, in a background thread.

        ``first_wait`` replaces the schedule's first wait (a late notification).
        """
        waits = self.schedule if first_wait is None else (first_wait, *self.schedule[1:])
        body = urlencode(params).encode("utf-8")
        with self._idle:
            self._pending += 1
        threading.Thread(
            target=self._run,
            args=(url, params["notify_id"], body, waits, copies),
            name=f"mockpay-notify-{params['out_trade_no']}",
            daemon=True,
        ).start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until no delivery is in progress; False if ``timeout`` ran out first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self, url, notify_id, body, waits, copies):
        try:
            for _ in range(copies):
                self._deliver(url, notify_id, body, waits)
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _deliver(self, url, notify_id, body, waits):
        for wait in waits:
            time.sleep(wait)
            attempt = Attempt(url, notify_id, *self._post(url, body))
            with self._idle:
                self._attempts.append(attempt)
            log.info("mockpay notify %s to %s: %s %r", notify_id, url, attempt.status, attempt.body[:100])
            if attempt.acknowledged:
                return
        log.warning("mockpay gave up notify %s to %s after %d attempts", notify_id, url, len(waits))

    def _post(self, url: str, body: bytes) -> tuple[int | None, str]:
        request = urllib.request.Request(url, data=body, headers={"Content-Type": FORM_TYPE}, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, _text(response)
        except urllib.error.HTTPError as error:
            with error:
                return error.code, _text(error)
        except (OSError, http.client.HTTPException) as error:
            return None, f"{type(error).__name__}: {error}"


def _text(response) -> str:
    """The start of a response body, enough to see whether it is ``success``."""
    return response.read(4096).decode("utf-8", "replace")


@cache
def _template(name: str) -> Template:
    return Template(resources.files(__package__).joinpath("templates", name).read_text("utf-8"))


def _page(name: str, status: int = 200, **values) -> Response:
    """An HTML page from ``templates/``; every value is escaped, so none can inject markup."""
    html = _template(name).substitute({key: escape(str(value)) for key, value in values.items()})
    return Response(html, status=status, content_type="text/html; charset=utf-8")


def _error(status: int, message: str) -> Response:
    return _page("error.html", status, title=HTTP_STATUS_CODES[status], message=message)


class SandboxApp:
    """The cashier as a WSGI app; ``ledger`` and ``notifier`` are public for tests and operators."""

    def __init__(self, config: MockpayConfig):
        self.config = config
        self.ledger = SandboxLedger()
        self.notifier = Notifier(config.notify_schedule)
        self.url_map = Map([Rule("/cashier", endpoint="cashier", methods=["GET", "POST"])])

    def __call__(self, environ, start_response):
        request = Request(environ)
        urls = self.url_map.bind_to_environ(environ)
        response = urls.dispatch(
            lambda endpoint, args: getattr(self, f"on_{endpoint}")(request, urls, **args),
            catch_http_exceptions=True,
        )
        return response(environ, start_response)

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
