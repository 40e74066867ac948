"""The offline Alipay gateway: ``gateway.do`` as Alipay serves it, for development and tests.

A plain WSGI app (werkzeug), mounted in the shop under ``/alipay-sandbox`` (the embedded
default) or served alone by ``gmall-payment alipay-sandbox``. Like Alipay it

- verifies every request's RSA2 signature with the merchant's public key and answers a bad
  one with ``40002 isv.invalid-signature`` (and the string it verified, as Alipay does);
- signs every JSON answer with its own key: ``{"<method>_response": {...}, "sign": "..."}``,
  where ``sign`` covers the exact text of the response object;
- serves ``alipay.trade.page.pay`` as a cashier page where the shopper pays or cancels, and
  ``alipay.trade.wap.pay`` (手机网站支付) as a phone's cashier, whose way back without paying is
  the shop's ``quit_url``; ``alipay.trade.query``, ``alipay.trade.refund`` (``out_request_no``
  makes a repeated refund the same refund) and ``alipay.trade.close``, with Alipay's codes
  (10000, 40004 ``ACQ.TRADE_NOT_EXIST``...);
- posts the asynchronous notify, signed, and retries on Alipay's schedule (4m, 10m, 10m, 1h,
  2h, 6h, 15h, divided by ``ALIPAY_SANDBOX_NOTIFY_SPEEDUP``) until it reads ``success``.

Beyond Alipay's documentation it refuses a ``timestamp`` more than
``ALIPAY_SANDBOX_TIMESTAMP_TOLERANCE`` seconds from Beijing time, so a shop that sends its
local time is caught here rather than in production. Pay scenarios (on the cashier page):
``duplicate`` notify, ``tampered`` signature, an ``empty`` field, a ``brace`` (``}``) inside a
value, and a ``lost`` notify (then only ``alipay.trade.query`` tells the truth).
A trade past its ``time_expire`` (Beijing time, sent with the pay request) is closed,
as Alipay closes it: page pay and the cashier refuse it ("订单已超时,不能付款") and a query
answers ``TRADE_CLOSED`` (this gateway sends no notify for that close).
Every refund that moves money is notified, as Alipay notifies them to the pay request's
``notify_url``: with ``refund_fee`` (all refunded so far), ``gmt_refund`` and the refund's
``out_request_no`` as ``out_biz_no``; ``trade_status`` stays ``TRADE_SUCCESS`` after a partial
refund and is ``TRADE_CLOSED`` (with ``gmt_close``) once all of it is refunded.
With ``ALIPAY_SANDBOX_CERT_MODE`` it speaks certificate mode (公钥证书) with certificates it
generates (``sandbox_certificates``): a request must carry the application certificate's
``app_cert_sn`` and the root's ``alipay_root_cert_sn`` (else ``isv.missing-app-cert-sn``,
``isv.app-cert-not-exist``, ``isv.invalid-alipay-root-cert-sn``...), and each signed answer
names the certificate it is signed under (``alipay_cert_sn``).
``alipay.data.dataservice.bill.downloadurl.query`` answers the URL of a day's bill, served here
as Alipay serves it (a zip of GBK CSV files: ``bill_desk``, ``bill_file``).
Its trades are kept in the instance folder (``alipay/gateway_trades.sqlite3``): they outlive a
restart, and every process of the shop (the CLI's too) sees the same ones.
"""

import base64
import contextlib
import json
import logging
import secrets
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial

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
from . import bill_desk
from .client import beijing_now
from .config import PAGE_PAY_PRODUCT, WAP_PAY_PRODUCT, GatewayConfig

log = logging.getLogger(__name__)

PAGE_PAY, WAP_PAY = "alipay.trade.page.pay", "alipay.trade.wap.pay"
QUERY, REFUND, CLOSE = "alipay.trade.query", "alipay.trade.refund", "alipay.trade.close"
BILL = bill_desk.BILL_QUERY
METHODS = (PAGE_PAY, WAP_PAY, QUERY, REFUND, CLOSE, BILL)
#: The methods the shopper's browser submits, each with its product code and its cashier page.
CASHIERS = {
    PAGE_PAY: (PAGE_PAY_PRODUCT, "电脑网站支付", "cashier.html"),
    WAP_PAY: (WAP_PAY_PRODUCT, "手机网站支付", "wap_cashier.html"),
}
SCENARIOS = ("normal", "duplicate", "tampered", "empty", "brace", "lost")
#: What the "brace" scenario puts in the trade's body: braces and a quote inside one string.
BRACE_BODY = '赠品 {"贴膜": "}"} 与 } 括号'
MESSAGES = {
    "10000": "Success",
    "40001": "Missing Required Arguments",
    "40002": "Invalid Arguments",
    "40004": "Business Failed",
}
ZERO = "0.00"
#: What the gateway says of a request the ledger's rules refuse, by sub_code.
REFUSALS = {
    rules.STATUS_ERROR: "交易状态不合法",
    rules.HAS_SUCCESS: "交易已被支付",
    rules.HAS_CLOSE: "交易已经关闭",
    rules.CONTEXT_INCONSISTENT: "交易信息被篡改",
    rules.DISCORDANT: "请求信息不一致: 同一退款请求号的金额不同",
    rules.NOT_EQUAL_TOTAL: "撤销或退款金额与订单金额不一致",
    rules.FEE_ERR: "退款金额无效",
}
REQUEST = rsa2.REQUEST_UNSIGNED_FIELDS  # a request's signature covers sign_type too


class GatewayError(Exception):
    """An answer other than 10000: Alipay's code, sub_code and sub_msg."""

    def __init__(self, code: str, sub_code: str, sub_msg: str, signed: bool = True, **extra):
        super().__init__(f"{code} {sub_code}: {sub_msg}")
        self.code, self.sub_code, self.sub_msg, self.signed, self.extra = (
            code,
            sub_code,
            sub_msg,
            signed,
            extra,
        )

    def content(self) -> dict:
        return {
            "code": self.code,
            "msg": MESSAGES[self.code],
            "sub_code": self.sub_code,
            "sub_msg": self.sub_msg,
            **self.extra,
        }


def missing(name: str) -> GatewayError:
    return GatewayError("40001", f"isv.missing-{name}", f"缺少{name}参数")


def invalid_parameter(message: str) -> GatewayError:
    return GatewayError("40004", "ACQ.INVALID_PARAMETER", f"参数无效: {message}")


@contextlib.contextmanager
def refusing():
    """What the ledger's rules refuse, as the gateway answers it."""
    try:
        yield
    except Refused as refused:
        raise GatewayError("40004", refused.sub_code, REFUSALS[refused.sub_code]) from None


@dataclass
class Trade(LedgerTrade):
    """A trade as the gateway keeps it: from the cashier page until closed."""

    out_trade_no: str
    trade_no: str
    total_amount: Decimal
    subject: str
    notify_url: str | None
    return_url: str | None
    gmt_create: datetime
    trade_status: str = WAIT
    body: str | None = None
    gmt_payment: datetime | None = None
    gmt_close: datetime | None = None
    buyer_id: str = "2088102177846880"
    buyer_logon_id: str = "sbx***@sandbox.com"
    refunds: dict = field(default_factory=dict)  # out_request_no -> Decimal
    refund_times: dict = field(default_factory=dict)  # out_request_no -> datetime (Beijing), for the bills
    time_expire: datetime | None = None  # Beijing time: unpaid then, the trade closes
    method: str = PAGE_PAY  # the pay request that opened it last: which cashier, which return
    quit_url: str | None = None  # 手机网站支付: where the phone cashier's way back goes


class Ledger:
    """The gateway's trades, by out_trade_no, kept in ``path`` (the instance folder's
    ``alipay/gateway_trades.sqlite3``: a restart of the shop, or the CLI in a process of its
    own, knows them too; in memory with no path). Each change is one transaction."""

    def __init__(self, path=None):
        self._file = TradeFile(path, Trade, answers=(GatewayError,))

    def get(self, out_trade_no: str | None = None, trade_no: str | None = None) -> Trade | None:
        with self._file.transaction() as trades:
            return trades.get(out_trade_no) if out_trade_no else trades.find(trade_no)

    def all(self) -> list[Trade]:
        with self._file.transaction() as trades:
            return trades.all()

    @contextlib.contextmanager
    def change(self, out_trade_no: str | None = None, trade_no: str | None = None) -> Iterator[Trade | None]:
        """The trade (None: unknown) to change in the block: kept when it ends, a GatewayError
        (the gateway's answer) included; any other exception changes nothing."""
        with self._file.transaction() as trades:
            trade = trades.get(out_trade_no) if out_trade_no else trades.find(trade_no)
            try:
                yield trade
            finally:
                if trade is not None:
                    trades.put(trade)

    def open(
        self, out_trade_no, total_amount, subject, notify_url, return_url, now, time_expire=None, **browser
    ) -> Trade:
        """The trade to pay: a new one, or the one already open with the same amount and subject;
        GatewayError when it cannot be paid (any more). ``browser``: the pay request's ``method``
        and ``quit_url``, taken as the last request gives them."""
        with self._file.transaction() as trades:
            trade = trades.get(out_trade_no)
            if trade is None:
                trade = Trade(
                    out_trade_no,
                    f"{now:%Y%m%d}22{secrets.randbelow(10**18):018d}",
                    total_amount,
                    subject,
                    notify_url,
                    return_url,
                    now,
                    time_expire=time_expire,
                    **browser,
                )
            else:
                with refusing():
                    rules.check_reopen(trade, total_amount, subject)
                trade.notify_url, trade.return_url, trade.time_expire = notify_url, return_url, time_expire
                for name, value in browser.items():
                    setattr(trade, name, value)
            expired = self.expire_if_due(trade, now)
            trades.put(trade)
            if expired:
                raise timed_out(trade)
            return trade

    def waiting(self, out_trade_no: str | None, now: datetime) -> Trade:
        """The trade waiting for its buyer; GatewayError when it is unknown, timed out, paid or closed."""
        with self.change(out_trade_no) as trade:
            return self._waiting(trade, now)

    def pay(self, out_trade_no: str | None, now: datetime, body: str | None = None) -> Trade:
        """The buyer pays the trade waiting for them (``body``: the trade's description, if any)."""
        with self.change(out_trade_no) as trade:
            self._waiting(trade, now)
            trade.trade_status, trade.gmt_payment = SUCCESS, now
            trade.body = body or trade.body
            return trade

    def _waiting(self, trade: Trade | None, now: datetime) -> Trade:
        if trade is None:
            raise GatewayError("40004", NOT_EXIST, "交易不存在")
        if self.expire_if_due(trade, now):
            raise timed_out(trade)
        if trade.trade_status != WAIT:
            raise GatewayError("40004", rules.STATUS_ERROR, f"交易状态不合法: {trade.trade_status}")
        return trade

    @staticmethod
    def expire_if_due(trade: Trade, now: datetime) -> bool:
        """Close the unpaid trade if its time_expire has come (Alipay's timeout close); True if it did."""
        if not trade.expired(now):
            return False
        trade.trade_status, trade.gmt_close = CLOSED, now
        return True


def timed_out(trade: Trade) -> GatewayError:
    return GatewayError(
        "40004",
        rules.HAS_CLOSE,
        f"订单已超时,不能付款: time_expire {trade.time_expire:{TIME_FORMAT}} (北京时间) 已过, 交易已关闭",
    )


def response_body(method: str | None, content: Mapping, private_key=None, cert_sn: str | None = None) -> str:
    """Alipay's JSON answer: the response object, and ``sign`` over its exact text when signed
    (after ``alipay_cert_sn``, the certificate it is signed under, in certificate mode)."""
    name = f"{method.replace('.', '_')}_response" if method in METHODS else "error_response"
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    body = f'{{"{name}":{text}'
    if private_key is not None and cert_sn:
        body += f',"alipay_cert_sn":"{cert_sn}"'
    if private_key is not None:
        body += f',"sign":"{rsa2.sign_text(text, private_key)}"'
    return body + "}"


def _tamper(signature: str) -> str:
    raw = bytearray(base64.b64decode(signature))
    raw[-1] ^= 0x01
    return base64.b64encode(bytes(raw)).decode("ascii")


class GatewayApp(Site):
    """``gateway.do`` and the cashier; ``ledger`` and ``notifier`` are public for tests and operators."""

    def __init__(self, config: GatewayConfig):
        self.config = config
        self.ledger = Ledger(config.trades_file)
        self.notifier = Notifier(config.schedule, name="alipay-sandbox")
        self.url_map = Map(
            [
                Rule("/gateway.do", endpoint="gateway", methods=["GET", "POST"]),
                Rule("/cashier", endpoint="cashier", methods=["POST"]),
                Rule(bill_desk.DOWNLOAD_PATH, endpoint="bill_file", methods=["GET"]),
            ]
        )

    # gateway.do

    def on_gateway(self, request: Request, urls) -> Response:
        params = {**request.args.to_dict(), **request.form.to_dict()}
        method = params.get("method")
        if method not in CASHIERS:
            return Response(
                self.answer(params, request.root_url.rstrip("/")),
                content_type="application/json; charset=utf-8",
            )
        try:
            self._check(params)
            return self._browser_pay(method, params, self._biz_content(params), urls)
        except GatewayError as error:
            log.info("alipay-sandbox %s refused: %s", method, error)
            return self._error(400, error)

    def answer(self, params: Mapping[str, str], base: str = "") -> str:
        """The JSON text Alipay answers a server's request with (query, refund, close, bill): the
        shop sends it over HTTP (``gateway.do``; ``base``: this gateway's address), or in process
        when this gateway is mounted in it."""
        method = params.get("method")
        try:
            self._check(params)
            if method in CASHIERS:
                raise GatewayError("40002", "isv.invalid-method", f"{method} 由买家的浏览器提交")
            content = {
                QUERY: self._query,
                REFUND: self._refund,
                CLOSE: self._close,
                BILL: partial(self._bill, base),
            }[method](self._biz_content(params))
            content = {"code": "10000", "msg": "Success", **content}
            key = self.config.private_key
        except GatewayError as error:
            log.info("alipay-sandbox %s refused: %s", method, error)
            content, key = error.content(), self.config.private_key if error.signed else None
        certificates = self.config.certificates
        return response_body(method, content, key, certificates and certificates.alipay_certificates[0].sn)

    def _check(self, params: Mapping[str, str]) -> None:
        """The public parameters, as Alipay checks them, the signature last."""
        for name, key in (("method", "method"), ("app-id", "app_id")):
            if not params.get(key):
                raise missing(name)
        if params["app_id"] != self.config.app_id:
            raise GatewayError("40002", "isv.invalid-app-id", "无效的AppID参数", signed=False)
        if params["method"] not in METHODS:
            raise GatewayError("40002", "isv.invalid-method", "不存在的方法名")
        for name, key in (
            ("signature", "sign"),
            ("signature-type", "sign_type"),
            ("timestamp", "timestamp"),
            ("version", "version"),
        ):
            if not params.get(key):
                raise missing(name)
        if params["sign_type"] != "RSA2":
            raise GatewayError("40002", "isv.invalid-signature-type", "无效的签名类型")
        if params["version"] != "1.0":
            raise GatewayError("40002", "isv.invalid-version", "无效的版本")
        self._check_timestamp(params["timestamp"])
        if params.get("charset", "utf-8").lower() != "utf-8":
            raise GatewayError("40002", "isv.invalid-charset", "字符集错误: 网关只接受 utf-8")
        if self.config.certificates is not None:
            self._check_cert_sns(params, self.config.certificates)
        if not rsa2.verify(params, params["sign"], self.config.merchant_public_key, REQUEST):
            raise GatewayError(
                "40002",
                "isv.invalid-signature",
                "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为："
                + rsa2.canonical_string(params, REQUEST),
            )

    @staticmethod
    def _check_cert_sns(params: Mapping[str, str], certificates) -> None:
        """Certificate mode: the request names our application certificate and Alipay's root."""
        for key, expected, unknown, what in (
            ("app_cert_sn", certificates.app_cert_sn, "isv.app-cert-not-exist", "应用公钥证书"),
            (
                "alipay_root_cert_sn",
                certificates.alipay_root_cert_sn,
                "isv.invalid-alipay-root-cert-sn",
                "支付宝根证书",
            ),
        ):
            if not params.get(key):
                raise GatewayError("40001", f"isv.missing-{key.replace('_', '-')}", f"缺少{what}序列号 {key}")
            if params[key] != expected:
                raise GatewayError("40002", unknown, f"{what}序列号 {params[key]} 无效: 网关的是 {expected}")

    def _check_timestamp(self, value: str) -> None:
        try:
            sent = datetime.strptime(value, TIME_FORMAT)
        except ValueError:
            raise GatewayError("40002", "isv.invalid-timestamp", "非法的时间戳参数") from None
        now = beijing_now()
        if abs((now - sent).total_seconds()) > self.config.timestamp_tolerance:
            raise GatewayError(
                "40002",
                "isv.invalid-timestamp",
                f"非法的时间戳参数: {value} 与网关时间 {now:{TIME_FORMAT}} (北京时间, UTC+8) 相差超过 "
                f"{self.config.timestamp_tolerance:g} 秒",
            )

    @staticmethod
    def _biz_content(params: Mapping[str, str]) -> dict:
        try:
            biz = json.loads(params.get("biz_content") or "{}")
        except ValueError:
            raise GatewayError("40002", "isv.invalid-biz-content", "biz_content 不是合法的 JSON") from None
        if not isinstance(biz, dict):
            raise GatewayError("40002", "isv.invalid-biz-content", "biz_content 不是 JSON 对象")
        return biz

    @contextlib.contextmanager
    def _changing(self, biz: Mapping) -> Iterator[Trade]:
        """The trade ``biz`` names, closed first if its time_expire has come, changed in the block."""
        if not (biz.get("out_trade_no") or biz.get("trade_no")):
            raise invalid_parameter("out_trade_no 和 trade_no 不能同时为空")
        with self.ledger.change(biz.get("out_trade_no"), biz.get("trade_no")) as trade:
            if trade is None:
                raise GatewayError(
                    "40004",
                    NOT_EXIST,
                    "交易不存在",
                    buyer_pay_amount=ZERO,
                    invoice_amount=ZERO,
                    out_trade_no=biz.get("out_trade_no", ""),
                    point_amount=ZERO,
                    receipt_amount=ZERO,
                )
            self.ledger.expire_if_due(trade, beijing_now())
            yield trade

    @staticmethod
    def _time_expire(value) -> datetime | None:
        if not value:
            return None
        try:
            return datetime.strptime(str(value), TIME_FORMAT)
        except ValueError:
            raise invalid_parameter(f"time_expire {value!r}: 格式为 yyyy-MM-dd HH:mm:ss (北京时间)") from None

    @staticmethod
    def _amount(value, name: str) -> Decimal:
        try:
            return to_amount(value)
        except InvalidAmount as error:
            raise invalid_parameter(f"{name}: {error}") from None

    # alipay.trade.page.pay and alipay.trade.wap.pay: the cashiers

    def _browser_pay(self, method, params, biz, urls) -> Response:
        product_code, product, template = CASHIERS[method]
        required = ("out_trade_no", "total_amount", "subject", "product_code")
        for name in required + (("quit_url",) if method == WAP_PAY else ()):
            if not biz.get(name):
                raise invalid_parameter(f"缺少 {name}")
        if biz["product_code"] != product_code:
            raise GatewayError("40004", "ACQ.PRODUCT_CODE_ERROR", f"产品码错误: {product}为 {product_code}")
        try:
            notify_url = (
                require_absolute_url("notify_url", params["notify_url"]) if params.get("notify_url") else None
            )
            return_url = (
                require_absolute_url("return_url", params["return_url"]) if params.get("return_url") else None
            )
            quit_url = require_absolute_url("quit_url", biz["quit_url"]) if method == WAP_PAY else None
        except ValueError as error:
            raise invalid_parameter(str(error)) from None
        trade = self.ledger.open(
            str(biz["out_trade_no"]),
            self._amount(biz["total_amount"], "total_amount"),
            str(biz["subject"]),
            notify_url,
            return_url,
            beijing_now(),
            self._time_expire(biz.get("time_expire")),
            method=method,
            quit_url=quit_url,
        )
        return page(
            __package__,
            template,
            action=urls.build("cashier"),
            out_trade_no=trade.out_trade_no,
            trade_no=trade.trade_no,
            subject=trade.subject,
            total_amount=format_amount(trade.total_amount),
            seller_id=self.config.seller_id,
            quit_url=quit_url or "",
        )

    def on_cashier(self, request: Request, urls) -> Response:
        """The shopper pays (with a scenario) or leaves; then back to the shop's return_url (303)."""
        action, scenario = request.form.get("action"), request.form.get("scenario") or "normal"
        if action not in ("pay", "cancel") or scenario not in SCENARIOS:
            return self._error(
                400,
                GatewayError(
                    "40004", "ACQ.INVALID_PARAMETER", f"unknown action {action!r} or scenario {scenario!r}"
                ),
            )
        out_trade_no = request.form.get("out_trade_no")
        try:
            if action == "cancel":
                trade = self.ledger.waiting(out_trade_no, beijing_now())
                return self._back(trade, {"out_trade_no": trade.out_trade_no})
            trade = self.ledger.pay(out_trade_no, beijing_now(), BRACE_BODY if scenario == "brace" else None)
        except GatewayError as error:
            return self._error(404 if error.sub_code == NOT_EXIST else 409, error)
        self._notify(trade, scenario)
        return self._back(trade, self._return_params(trade))

    def _back(self, trade: Trade, params: Mapping) -> Response:
        if not trade.return_url:
            return page(
                __package__, "done.html", out_trade_no=trade.out_trade_no, trade_status=trade.trade_status
            )
        return redirect(with_query(trade.return_url, params), code=303)

    def _return_params(self, trade: Trade) -> dict:
        """The synchronous return's parameters, signed as Alipay signs them (the shop need not trust them)."""
        params = {
            "charset": "utf-8",
            "out_trade_no": trade.out_trade_no,
            "method": f"{trade.method}.return",
            "total_amount": format_amount(trade.total_amount),
            "trade_no": trade.trade_no,
            "auth_app_id": self.config.app_id,
            "version": "1.0",
            "app_id": self.config.app_id,
            "sign_type": "RSA2",
            "seller_id": self.config.seller_id,
            "timestamp": f"{beijing_now():{TIME_FORMAT}}",
        }
        params["sign"] = rsa2.sign(params, self.config.private_key)
        return params

    def _error(self, status: int, error: GatewayError) -> Response:
        return error_page(__package__, status, error.sub_msg, code=error.code, sub_code=error.sub_code)

    # the asynchronous notify

    def notify_params(self, trade: Trade, scenario: str = "normal") -> dict:
        """The notify for the trade's current status, signed (or spoilt, as the scenario says)."""
        amount = format_amount(trade.total_amount)
        paid = amount if trade.paid else ZERO
        params = {
            "notify_time": f"{beijing_now():{TIME_FORMAT}}",
            "notify_type": "trade_status_sync",
            "notify_id": f"{uuid.uuid4().hex}{secrets.token_hex(8)}",
            "charset": "utf-8",
            "version": "1.0",
            "sign_type": "RSA2",
            "app_id": self.config.app_id,
            "auth_app_id": self.config.app_id,
            "seller_id": self.config.seller_id,
            "buyer_id": trade.buyer_id,
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "trade_status": trade.trade_status,
            "total_amount": amount,
            "receipt_amount": paid,
            "invoice_amount": paid,
            "buyer_pay_amount": paid,
            "point_amount": ZERO,
            "subject": trade.subject,
            "gmt_create": f"{trade.gmt_create:{TIME_FORMAT}}",
        }
        if trade.paid:
            params["gmt_payment"] = f"{trade.gmt_payment:{TIME_FORMAT}}"
            params["fund_bill_list"] = json.dumps([{"amount": amount, "fundChannel": "ALIPAYACCOUNT"}])
        if trade.gmt_close:
            params["gmt_close"] = f"{trade.gmt_close:{TIME_FORMAT}}"
        if trade.refunds:
            params["refund_fee"] = format_amount(trade.refunded)
            params["out_biz_no"] = list(trade.refunds)[-1]
            now = beijing_now()  # Alipay's gmt_refund has milliseconds: yyyy-MM-dd HH:mm:ss.SSS
            params["gmt_refund"] = f"{now:{TIME_FORMAT}}.{now.microsecond // 1000:03d}"
        if trade.body:
            params["body"] = trade.body
        if scenario == "empty":
            params["passback_params"] = ""  # sent empty, left out of the signature (as Alipay does)
        params["sign"] = rsa2.sign(params, self.config.private_key)
        if scenario == "tampered":
            params["sign"] = _tamper(params["sign"])
        return params

    def _notify(self, trade: Trade, scenario: str = "normal") -> None:
        if scenario == "lost" or not trade.notify_url:
            log.info(
                "alipay-sandbox sends no notify for %s (%s)",
                trade.out_trade_no,
                "lost on purpose" if scenario == "lost" else "no notify_url",
            )
            return
        self.notifier.send(
            trade.notify_url, self.notify_params(trade, scenario), copies=2 if scenario == "duplicate" else 1
        )

    # alipay.trade.query, .refund, .close

    def _query(self, biz: Mapping) -> dict:
        with self._changing(biz) as trade:
            paid = format_amount(trade.total_amount) if trade.paid else ZERO
            content = {
                "trade_no": trade.trade_no,
                "out_trade_no": trade.out_trade_no,
                "buyer_logon_id": trade.buyer_logon_id,
                "trade_status": trade.trade_status,
                "total_amount": format_amount(trade.total_amount),
                "buyer_pay_amount": paid,
                "point_amount": ZERO,
                "invoice_amount": paid,
                "receipt_amount": paid,
                "buyer_user_id": trade.buyer_id,
            }
            if trade.paid:
                content["send_pay_date"] = f"{trade.gmt_payment:{TIME_FORMAT}}"
            if trade.body:
                content["body"] = trade.body
            return content

    def _refund(self, biz: Mapping) -> dict:
        amount = self._amount(biz.get("refund_amount"), "refund_amount")
        with self._changing(biz) as trade:
            request_no = str(biz.get("out_request_no") or trade.out_trade_no)
            with refusing():
                refunds = rules.refunds_after(
                    trade, amount, request_no, whole_only=not biz.get("out_request_no")
                )
            if refunds is not None:
                trade.refunds = refunds
                trade.refund_times = {**trade.refund_times, request_no: beijing_now()}
                if rules.fully_refunded(trade, refunds):
                    trade.trade_status, trade.gmt_close = CLOSED, beijing_now()
                self._notify(trade)  # partial: TRADE_SUCCESS with the refund; full: TRADE_CLOSED
            return {
                "trade_no": trade.trade_no,
                "out_trade_no": trade.out_trade_no,
                "buyer_logon_id": trade.buyer_logon_id,
                "fund_change": "N" if refunds is None else "Y",
                "refund_fee": format_amount(trade.refunded),
                "send_back_fee": format_amount(amount),
                "gmt_refund_pay": f"{beijing_now():{TIME_FORMAT}}",
                "buyer_user_id": trade.buyer_id,
            }

    def _close(self, biz: Mapping) -> dict:
        with self._changing(biz) as trade, refusing():
            rules.check_close(trade)
            trade.trade_status, trade.gmt_close = CLOSED, beijing_now()
        self._notify(trade)
        return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}

    # alipay.data.dataservice.bill.downloadurl.query, and the file it points at

    def _bill(self, base: str, biz: Mapping) -> dict:
        try:
            return bill_desk.download_url(biz, beijing_now().date(), base)
        except bill_desk.BillRefused as refused:
            raise GatewayError("40004", refused.sub_code, refused.message) from None

    def bill_file(self, url: str) -> tuple[str, bytes]:
        """The name and the zip a ``bill_download_url`` of this gateway points at (the shop's
        provider reads it here when the gateway is mounted in it); BillRefused for a day it has no
        bill of."""
        day = bill_desk.requested_day(url, beijing_now().date())
        return bill_desk.bill_zip(self.ledger.all(), self.config.seller_id, day, beijing_now())

    def on_bill_file(self, request: Request, urls) -> Response:
        try:
            name, data = self.bill_file(request.url)
        except bill_desk.BillRefused as refused:
            return Response(refused.message, status=404, content_type="text/plain; charset=utf-8")
        return Response(
            data,
            content_type="application/zip",
            headers={"Content-Disposition": f"attachment; filename={name}"},
        )


def make_gateway_app(settings: Mapping) -> GatewayApp:
    """The offline gateway for these settings (its keys are read, or generated, now)."""
    return GatewayApp(GatewayConfig.from_settings(settings))
