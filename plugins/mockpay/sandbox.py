"""mockpay's simulated provider site: the shop opens trades by a signed call, the cashier lets
the shopper pay, fail or cancel them, and signed notifications follow.

A plain WSGI app (werkzeug), mounted inside the shop under ``/mockpay``. It signs what it
sends (notifications, answers) with its own key, and it does only what the shop asked for by
a request signed with the merchant's key, as Alipay does; so it is no signing service for
whoever posts to it:

- ``POST /api``, every request signed (RSA2 over the request's fields, ``sign_type``
  included, as Alipay's gateway wants) with a ``timestamp`` within ``TIMESTAMP_TOLERANCE`` of
  the sandbox's clock; unsigned or badly signed requests are refused and change nothing.
  ``method`` is ``mockpay.trade.create`` (the shop opens the trade at checkout with its amount,
  subject, absolute ``notify_url`` and ``return_url`` and optional ``time_expire``), ``.query``,
  ``.refund`` or ``.close``. Answers are signed like the notifications, with Alipay's codes:
  10000, 40001 (missing), 40002 (invalid signature or timestamp), or 40004 with
  ``ACQ.TRADE_NOT_EXIST``, ``ACQ.TRADE_STATUS_ERROR``, ``ACQ.TRADE_HAS_SUCCESS``,
  ``ACQ.TRADE_HAS_CLOSE``, ``ACQ.REASON_TRADE_REFUND_FEE_ERR`` (more refunded than paid),
  ``ACQ.DISCORDANT_REPEAT_REQUEST`` (one out_request_no, two amounts).
- ``GET /cashier?out_trade_no=...`` shows a trade the shop opened, ``POST /cashier`` (its
  reference, ``action`` and ``scenario``) acts on it. Nothing else of the form counts: the
  notification goes to the trade's ``notify_url`` and the shopper back to its ``return_url``,
  which, when the shop's ``PUBLIC_URL`` is set, must lie under it. An unknown trade is 404, a
  paid or closed one 409; a trade past its ``time_expire`` is closed (as Alipay closes it).

Pay scenarios exercise what a real provider does to a shop: ``normal`` notifies and retries
until the shop reads back ``success``; ``duplicate`` delivers the same signed notification
twice; ``late`` redirects the shopper at once and notifies after ``MOCKPAY_LATE_SECONDS``;
``lost`` takes the money and never notifies (the ledger still knows, for reconciliation).
The sandbox keeps its trades in the instance folder (``mockpay/trades.sqlite3``): they outlive a
restart, and every process of the shop (the CLI's too) sees the same ones.
"""

import contextlib
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlsplit

from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from ...core.errors import InvalidAmount
from ...core.money import format_amount, to_amount
from .. import rsa2
from .. import sandbox_ledger as rules
from ..alipay_protocol import NOT_EXIST, TIME_FORMAT
from ..sandbox_ledger import CLOSED, SUCCESS, WAIT, LedgerTrade, Refused, TradeFile
from ..sandbox_site import Notifier, Site, error_page, page
from ..urls import require_absolute_url, with_query
from .config import TIMESTAMP_TOLERANCE, MockpayConfig

log = logging.getLogger(__name__)

ACTIONS = ("pay", "fail", "cancel")
CREATE, QUERY, REFUND, CLOSE = (
    "mockpay.trade.create",
    "mockpay.trade.query",
    "mockpay.trade.refund",
    "mockpay.trade.close",
)
API_METHODS = (CREATE, QUERY, REFUND, CLOSE)
SCENARIOS = ("normal", "duplicate", "late", "lost")
TRADE_FIELDS = ("out_trade_no", "total_amount", "subject", "notify_url", "return_url")


@dataclass(frozen=True)
class TradeRequest:
    """What the shop asked the sandbox to collect (``mockpay.trade.create``), checked."""

    out_trade_no: str
    total_amount: Decimal
    subject: str
    notify_url: str
    return_url: str
    time_expire: datetime | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str], public_url: str = "") -> "TradeRequest":
        """Parse the shop's request; TradeError says what it got wrong. With ``public_url``
        the notify and return URLs must lie under it: the shop's own."""
        missing = [name for name in TRADE_FIELDS if not params.get(name)]
        if missing:
            raise invalid_parameter("missing " + ", ".join(missing))
        try:
            total_amount = to_amount(params["total_amount"])
            urls = {name: require_absolute_url(name, params[name]) for name in ("notify_url", "return_url")}
            time_expire = (
                datetime.strptime(params["time_expire"], TIME_FORMAT) if params.get("time_expire") else None
            )
        except (InvalidAmount, ValueError) as error:
            raise invalid_parameter(str(error)) from None
        for name, url in urls.items():
            if public_url and not under(url, public_url):
                raise invalid_parameter(
                    f"{name} {url!r} is not the shop's: it must lie under PUBLIC_URL {public_url}"
                )
        return cls(params["out_trade_no"], total_amount, params["subject"], time_expire=time_expire, **urls)


def under(url: str, base: str) -> bool:
    """Whether ``url`` has ``base``'s scheme and host, and a path at or below ``base``'s."""
    target, root = urlsplit(url), urlsplit(base)
    prefix = root.path.rstrip("/")
    return (target.scheme, target.netloc.lower()) == (root.scheme, root.netloc.lower()) and (
        target.path == prefix or target.path.startswith(prefix + "/")
    )


@dataclass(frozen=True)
class SandboxTrade(LedgerTrade):
    """A trade the sandbox knows: opened by the shop, then paid or closed."""

    out_trade_no: str
    trade_no: str
    total_amount: Decimal
    subject: str
    gmt_payment: datetime | None
    trade_status: str = SUCCESS
    refunds: dict = field(default_factory=dict, compare=False)  # out_request_no -> Decimal
    notify_url: str = ""
    return_url: str = ""
    time_expire: datetime | None = None  # the sandbox's clock: unpaid then, the trade closes


class TradeError(Exception):
    """What the sandbox answers instead of doing it: Alipay's code, sub_code and a message."""

    def __init__(self, sub_code: str, message: str, code: str = "40004"):
        super().__init__(f"{sub_code}: {message}")
        self.code, self.sub_code, self.message = code, sub_code, message


def invalid_parameter(message: str) -> TradeError:
    return TradeError("ACQ.INVALID_PARAMETER", message)


@contextlib.contextmanager
def refusing():
    """What the ledger's rules refuse, as the sandbox's answer."""
    try:
        yield
    except Refused as refused:
        raise TradeError(refused.sub_code, refused.message) from None


class SandboxLedger:
    """The sandbox's memory of trades: what it answers when asked, notified or not. Kept in
    ``path`` (the instance folder's ``mockpay/trades.sqlite3``), so a restart of the shop, or
    the CLI in a process of its own, knows the trades too; in memory with no path.

    Every look at a trade first closes it if its ``time_expire`` has come (``now``)."""

    def __init__(self, path=None):
        self._file = TradeFile(path, SandboxTrade, answers=(TradeError,))

    @staticmethod
    def _trade_no(now: datetime) -> str:
        return f"{now:%Y%m%d}{secrets.randbelow(10**20):020d}"  # Alipay-like, 28 digits

    def create(self, request: TradeRequest, now: datetime) -> SandboxTrade:
        """Open the trade, waiting for the buyer; the same request again (the shopper checks out
        once more) keeps the trade and takes its new URLs and expiry."""
        with self._file.transaction() as trades:
            trade = self._current(trades, request.out_trade_no, now)
            if trade is None:
                trade = SandboxTrade(
                    request.out_trade_no,
                    self._trade_no(now),
                    request.total_amount,
                    request.subject,
                    None,
                    WAIT,
                )
            else:
                with refusing():
                    rules.check_reopen(trade, request.total_amount, request.subject)
            trade = replace(
                trade,
                notify_url=request.notify_url,
                return_url=request.return_url,
                time_expire=request.time_expire,
            )
            trades.put(trade)
            return trade

    def payable(self, out_trade_no: str, now: datetime) -> SandboxTrade:
        """The trade waiting for its buyer; TradeError when it is unknown, paid or closed."""
        with self._file.transaction() as trades:
            return self._waiting(trades, out_trade_no, now)

    def pay(self, out_trade_no: str, now: datetime) -> SandboxTrade:
        """Take the money once; TradeError when the trade is unknown, paid or closed."""
        with self._file.transaction() as trades:
            trade = replace(self._waiting(trades, out_trade_no, now), gmt_payment=now, trade_status=SUCCESS)
            trades.put(trade)
            return trade

    def trade(self, out_trade_no: str) -> SandboxTrade | None:
        with self._file.transaction() as trades:
            return trades.get(out_trade_no)

    @staticmethod
    def _current(trades, out_trade_no: str, now: datetime) -> SandboxTrade | None:
        trade = trades.get(out_trade_no)
        if trade is not None and trade.expired(now):
            trade = replace(trade, trade_status=CLOSED)  # Alipay's timeout close
            trades.put(trade)
        return trade

    def _known(self, trades, out_trade_no: str, now: datetime) -> SandboxTrade:
        trade = self._current(trades, out_trade_no, now)
        if trade is None:
            raise TradeError(
                NOT_EXIST, f"trade {out_trade_no} does not exist: the shop opens its trades at checkout"
            )
        return trade

    def _waiting(self, trades, out_trade_no: str, now: datetime) -> SandboxTrade:
        trade = self._known(trades, out_trade_no, now)
        if trade.trade_status != WAIT:
            closed = f"closed{' (its time_expire passed)' if trade.time_expire and now >= trade.time_expire else ''}"
            raise TradeError(
                rules.STATUS_ERROR,
                f"trade {out_trade_no} is {'already paid' if trade.gmt_payment else closed}",
            )
        return trade

    def query(self, out_trade_no: str, now: datetime) -> SandboxTrade:
        with self._file.transaction() as trades:
            return self._known(trades, out_trade_no, now)

    def close(self, out_trade_no: str, now: datetime) -> SandboxTrade:
        """Close a trade waiting for its buyer; it can no longer be paid."""
        with self._file.transaction() as trades:
            trade = self._known(trades, out_trade_no, now)
            with refusing():
                rules.check_close(trade)
            trade = replace(trade, trade_status=CLOSED)
            trades.put(trade)
            return trade

    def refund(
        self, out_trade_no: str, amount: Decimal, request_no: str, now: datetime
    ) -> tuple[SandboxTrade, bool]:
        """Refund ``amount`` of a paid trade once per ``request_no``; (the trade, whether money moved).

        Refunds never exceed what was paid; the trade closes once all of it is refunded.
        """
        with self._file.transaction() as trades:
            trade = self._known(trades, out_trade_no, now)
            with refusing():
                refunds = rules.refunds_after(trade, amount, request_no)
            if refunds is None:
                return trade, False
            status = CLOSED if rules.fully_refunded(trade, refunds) else trade.trade_status
            trade = replace(trade, refunds=refunds, trade_status=status)
            trades.put(trade)
            return trade, True


def _page(name: str, status: int = 200, **values) -> Response:
    return page(__package__, name, status, **values)


def _error(status: int, message: str) -> Response:
    return error_page(__package__, status, message)


class SandboxApp(Site):
    """The cashier and the API as a WSGI app; ``ledger``, ``notifier`` and ``clock`` are public
    for tests and operators."""

    def __init__(self, config: MockpayConfig, clock: Callable[[], datetime] = datetime.now):
        self.config = config
        self.clock = clock
        self.ledger = SandboxLedger(config.trades_file)
        self.notifier = Notifier(config.notify_schedule, name="mockpay")
        self.url_map = Map(
            [
                Rule("/cashier", endpoint="cashier", methods=["GET", "POST"]),
                Rule("/api", endpoint="api", methods=["POST"]),
            ]
        )

    # the cashier: the shopper's side

    def on_cashier(self, request: Request, urls) -> Response:
        acting = request.method == "POST"  # GET (and HEAD) only show the page
        params = request.form if acting else request.args
        action, scenario = params.get("action"), params.get("scenario") or "normal"
        if acting and (action not in ACTIONS or scenario not in SCENARIOS):
            return _error(400, f"unknown action {action!r} or scenario {scenario!r}")
        try:
            trade = self.ledger.payable(params.get("out_trade_no") or "", self.clock())
        except TradeError as error:
            return _error(404 if error.sub_code == NOT_EXIST else 409, error.message)
        if not acting:
            return _page(
                "cashier.html",
                action=urls.build("cashier"),
                out_trade_no=trade.out_trade_no,
                total_amount=format_amount(trade.total_amount),
                subject=trade.subject,
                late_seconds=f"{self.config.late_seconds:g}",
            )
        return self._act(trade, action, scenario)

    def _act(self, trade: SandboxTrade, action: str, scenario: str) -> Response:
        """Pay, fail or cancel, then send the shopper back to the shop's return_url at once (303)."""
        back = {"out_trade_no": trade.out_trade_no}
        if action == "pay":
            try:
                trade = self.ledger.pay(trade.out_trade_no, self.clock())
            except TradeError as error:
                return _error(409, error.message)
            self._notify(trade, scenario)
        else:  # what the shopper did, for the shop to show; only the notify or a query says "paid"
            back["cancelled" if action == "cancel" else "failed"] = "1"
        return redirect(with_query(trade.return_url, back), code=303)

    def _notify(self, trade: SandboxTrade, scenario: str):
        if scenario == "lost":
            log.info("mockpay lost the notify of %s on purpose", trade.out_trade_no)
            return
        params = signed_notification(trade, self.config.app_id, self.config.private_key)
        self.notifier.send(
            trade.notify_url,
            params,
            copies=2 if scenario == "duplicate" else 1,
            first_wait=self.config.late_seconds if scenario == "late" else None,
        )

    # the API: the shop's server

    def on_api(self, request: Request, urls) -> Response:
        return Response(
            json.dumps(self.answer(request.form.to_dict()), ensure_ascii=False),
            content_type="application/json; charset=utf-8",
        )

    def answer(self, params: Mapping[str, str]) -> dict:
        """The signed answer to a request of the shop's server: it opens a trade (create), asks
        about it (query), refunds or closes it. The shop calls it over HTTP (``/api``), or in
        process when the sandbox is mounted in the shop itself."""
        method = params.get("method")
        try:
            self._check(params)
            out_trade_no, now = params.get("out_trade_no") or "", self.clock()
            if method == CREATE:
                answer = self._trade_fields(
                    self.ledger.create(TradeRequest.from_params(params, self.config.public_url), now)
                )
            elif method == QUERY:
                answer = self._trade_fields(self.ledger.query(out_trade_no, now))
            elif method == CLOSE:
                answer = self._trade_fields(self.ledger.close(out_trade_no, now))
            else:
                answer = self._refund(params, out_trade_no, now)
            answer = {"code": "10000", "msg": "Success", **answer}
        except TradeError as error:
            log.info("mockpay sandbox %s refused: %s", method, error)
            answer = {
                "code": error.code,
                "msg": "Business Failed",
                "sub_code": error.sub_code,
                "sub_msg": error.message,
            }
        answer["sign"] = rsa2.sign(answer, self.config.private_key)
        return answer

    def _check(self, params: Mapping[str, str]) -> None:
        """Ours, a method we know, signed by the shop (the merchant key) just now."""
        if params.get("app_id") != self.config.app_id:
            raise TradeError("isv.invalid-app-id", f"unknown app_id {params.get('app_id')!r}")
        if params.get("method") not in API_METHODS:
            raise TradeError("isv.invalid-method", f"unknown method {params.get('method')!r}")
        for name in ("sign", "sign_type", "timestamp"):
            if not params.get(name):
                raise TradeError(
                    f"isv.missing-{'signature' if name == 'sign' else name.replace('_', '-')}",
                    f"{name} is required: requests are signed by the shop",
                    code="40001",
                )
        if params["sign_type"] != "RSA2":
            raise TradeError(
                "isv.invalid-signature-type", f"sign_type {params['sign_type']!r} is not RSA2", "40002"
            )
        try:
            sent = datetime.strptime(params["timestamp"], TIME_FORMAT)
        except ValueError:
            raise TradeError("isv.invalid-timestamp", f"timestamp {params['timestamp']!r}", "40002") from None
        if abs((self.clock() - sent).total_seconds()) > TIMESTAMP_TOLERANCE:
            raise TradeError(
                "isv.invalid-timestamp",
                f"timestamp {params['timestamp']} is more than "
                f"{TIMESTAMP_TOLERANCE} s from the sandbox's clock",
                "40002",
            )
        if not rsa2.verify(
            params, params["sign"], self.config.merchant_public_key, rsa2.REQUEST_UNSIGNED_FIELDS
        ):
            raise TradeError(
                "isv.invalid-signature", "the request does not verify with the merchant's public key", "40002"
            )

    def _refund(self, params, out_trade_no: str, now: datetime) -> dict:
        request_no = params.get("out_request_no") or ""
        if not request_no:
            raise invalid_parameter("out_request_no is required")
        try:
            amount = to_amount(params.get("refund_amount"))
        except InvalidAmount as error:
            raise invalid_parameter(f"refund_amount: {error}") from None
        trade, fund_change = self.ledger.refund(out_trade_no, amount, request_no, now)
        return {
            **self._trade_fields(trade),
            "out_request_no": request_no,
            "refund_amount": format_amount(amount),
            "refund_fee": format_amount(trade.refunded),
            "fund_change": "Y" if fund_change else "N",
        }

    @staticmethod
    def _trade_fields(trade: SandboxTrade) -> dict:
        return {
            "out_trade_no": trade.out_trade_no,
            "trade_no": trade.trade_no,
            "trade_status": trade.trade_status,
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
    params["sign"] = rsa2.sign(params, private_key)
    return params


def make_sandbox_app(settings: Mapping) -> SandboxApp:
    """The sandbox for these settings; keys are loaded, and threads started, only when paying."""
    return SandboxApp(MockpayConfig.from_settings(settings))
