"""The offline Alipay gateway: ``gateway.do`` as Alipay serves it, for development and tests.

A plain WSGI app (werkzeug), mounted in the shop under ``/alipay-sandbox`` (the embedded
default) or served alone by ``gmall-payment alipay-sandbox``. Like Alipay it

- verifies every request's RSA2 signature with the merchant's public key and answers a bad
  one with ``40002 isv.invalid-signature`` (and the string it verified, as Alipay does);
- signs every JSON answer with its own key: ``{"<method>_response": {...}, "sign": "..."}``,
  where ``sign`` covers the exact text of the response object;
- serves ``alipay.trade.page.pay`` as a cashier page where the shopper pays or cancels,
  ``alipay.trade.query``, ``alipay.trade.refund`` (``out_request_no`` makes a repeated refund
  the same refund) and ``alipay.trade.close``, with Alipay's codes (10000, 40004
  ``ACQ.TRADE_NOT_EXIST``...);
- posts the asynchronous notify, signed, and retries on Alipay's schedule (4m, 10m, 10m, 1h,
  2h, 6h, 15h, divided by ``ALIPAY_SANDBOX_NOTIFY_SPEEDUP``) until it reads ``success``.

Beyond Alipay's documentation it refuses a ``timestamp`` more than
``ALIPAY_SANDBOX_TIMESTAMP_TOLERANCE`` seconds from Beijing time, so a shop that sends its
local time is caught here rather than in production. Pay scenarios (on the cashier page):
``duplicate`` notify, ``tampered`` signature, an ``empty`` field, a ``brace`` (``}``) inside a
value, and a ``lost`` notify (then only ``alipay.trade.query`` tells the truth).
Refund notifications are not sent.
"""

import base64
import json
import logging
import secrets
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
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
from .client import beijing_now
from .config import GatewayConfig

log = logging.getLogger(__name__)

PAGE_PAY = "alipay.trade.page.pay"
QUERY, REFUND, CLOSE = "alipay.trade.query", "alipay.trade.refund", "alipay.trade.close"
METHODS = (PAGE_PAY, QUERY, REFUND, CLOSE)
SCENARIOS = ("normal", "duplicate", "tampered", "empty", "brace", "lost")
#: What the "brace" scenario puts in the trade's body: braces and a quote inside one string.
BRACE_BODY = '赠品 {"贴膜": "}"} 与 } 括号'
WAIT, SUCCESS, CLOSED = "WAIT_BUYER_PAY", "TRADE_SUCCESS", "TRADE_CLOSED"
MESSAGES = {
    "10000": "Success",
    "40001": "Missing Required Arguments",
    "40002": "Invalid Arguments",
    "40004": "Business Failed",
}
ZERO = "0.00"
REQUEST = signing.REQUEST_UNSIGNED_FIELDS  # a request's signature covers sign_type too


class GatewayError(Exception):
    """An answer other than 10000: Alipay's code, sub_code and sub_msg."""

    def __init__(self, code: str, sub_code: str, sub_msg: str, signed: bool = True, **extra):
        super().__init__(f"{code} {sub_code}: {sub_msg}")
        self.code, self.sub_code, self.sub_msg, self.signed, self.extra = code, sub_code, sub_msg, signed, extra

    def content(self) -> dict:
        return {"code": self.code, "msg": MESSAGES[self.code], "sub_code": self.sub_code, "sub_msg": self.sub_msg,
                **self.extra}


def missing(name: str) -> GatewayError:
    return GatewayError("40001", f"isv.missing-{name}", f"缺少{name}参数")


def invalid_parameter(message: str) -> GatewayError:
    return GatewayError("40004", "ACQ.INVALID_PARAMETER", f"参数无效: {message}")


@dataclass
class Trade:
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

    @property
    def refunded(self) -> Decimal:
        return sum(self.refunds.values(), Decimal("0.00"))

    @property
    def paid(self) -> bool:
        return self.gmt_payment is not None


class Ledger:
    """The gateway's trades, by out_trade_no, behind one lock."""

    def __init__(self):
        self.lock = threading.RLock()
        self._trades: dict[str, Trade] = {}

    def get(self, out_trade_no: str | None = None, trade_no: str | None = None) -> Trade | None:
        with self.lock:
            if out_trade_no:
                return self._trades.get(out_trade_no)
            return next((t for t in self._trades.values() if t.trade_no == trade_no), None)

    def open(self, out_trade_no, total_amount, subject, notify_url, return_url, now) -> Trade:
        """The trade to pay: a new one, or the one already open with the same amount and subject."""
        with self.lock:
            trade = self._trades.get(out_trade_no)
            if trade is None:
                trade = self._trades[out_trade_no] = Trade(
                    out_trade_no, f"{now:%Y%m%d}22{secrets.randbelow(10**18):018d}", total_amount, subject,
                    notify_url, return_url, now,
                )
                return trade
            if trade.trade_status == SUCCESS or trade.paid:
                raise GatewayError("40004", "ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
            if trade.trade_status == CLOSED:
                raise GatewayError("40004", "ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            if (trade.total_amount, trade.subject) != (total_amount, subject):
                raise GatewayError("40004", "ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
            trade.notify_url, trade.return_url = notify_url, return_url
            return trade


def response_body(method: str | None, content: Mapping, private_key=None) -> str:
    """Alipay's JSON answer: the response object, and ``sign`` over its exact text when signed."""
    name = f"{method.replace('.', '_')}_response" if method in METHODS else "error_response"
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    body = f'{{"{name}":{text}'
    if private_key is not None:
        body += f',"sign":"{signing.sign_text(text, private_key)}"'
    return body + "}"


def _tamper(signature: str) -> str:
    raw = bytearray(base64.b64decode(signature))
    raw[-1] ^= 0x01
    return base64.b64encode(bytes(raw)).decode("ascii")


class GatewayApp(Site):
    """``gateway.do`` and the cashier; ``ledger`` and ``notifier`` are public for tests and operators."""

    def __init__(self, config: GatewayConfig):
        self.config = config
        self.ledger = Ledger()
        self.notifier = Notifier(config.schedule, name="alipay-sandbox")
        self.url_map = Map([
            Rule("/gateway.do", endpoint="gateway", methods=["GET", "POST"]),
            Rule("/cashier", endpoint="cashier", methods=["POST"]),
        ])

    # gateway.do

    def on_gateway(self, request: Request, urls) -> Response:
        params = {**request.args.to_dict(), **request.form.to_dict()}
        method = params.get("method")
        try:
            self._check(params)
            biz = self._biz_content(params)
            if method == PAGE_PAY:
                return self._page_pay(params, biz, urls)
            content = {QUERY: self._query, REFUND: self._refund, CLOSE: self._close}[method](biz)
            content = {"code": "10000", "msg": "Success", **content}
            key = self.config.private_key
        except GatewayError as error:
            log.info("alipay-sandbox %s refused: %s", method, error)
            if method == PAGE_PAY:
                return self._error(400, error)
            content, key = error.content(), self.config.private_key if error.signed else None
        return Response(response_body(method, content, key), content_type="application/json; charset=utf-8")

    def _check(self, params: Mapping[str, str]) -> None:
        """The public parameters, as Alipay checks them, the signature last."""
        for name, key in (("method", "method"), ("app-id", "app_id")):
            if not params.get(key):
                raise missing(name)
        if params["app_id"] != self.config.app_id:
            raise GatewayError("40002", "isv.invalid-app-id", "无效的AppID参数", signed=False)
        if params["method"] not in METHODS:
            raise GatewayError("40002", "isv.invalid-method", "不存在的方法名")
        for name, key in (("signature", "sign"), ("signature-type", "sign_type"), ("timestamp", "timestamp"),
                          ("version", "version")):
            if not params.get(key):
                raise missing(name)
        if params["sign_type"] != "RSA2":
            raise GatewayError("40002", "isv.invalid-signature-type", "无效的签名类型")
        if params["version"] != "1.0":
            raise GatewayError("40002", "isv.invalid-version", "无效的版本")
        self._check_timestamp(params["timestamp"])
        if params.get("charset", "utf-8").lower() != "utf-8":
            raise GatewayError("40002", "isv.invalid-charset", "字符集错误: 网关只接受 utf-8")
        if not signing.verify(params, params["sign"], self.config.merchant_public_key, REQUEST):
            raise GatewayError(
                "40002", "isv.invalid-signature",
                "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为："
                + signing.canonical_string(params, REQUEST),
            )

    def _check_timestamp(self, value: str) -> None:
        try:
            sent = datetime.strptime(value, TIME_FORMAT)
        except ValueError:
            raise GatewayError("40002", "isv.invalid-timestamp", "非法的时间戳参数") from None
        now = beijing_now()
        if abs((now - sent).total_seconds()) > self.config.timestamp_tolerance:
            raise GatewayError(
                "40002", "isv.invalid-timestamp",
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

    def _trade(self, biz: Mapping) -> Trade:
        if not (biz.get("out_trade_no") or biz.get("trade_no")):
            raise invalid_parameter("out_trade_no 和 trade_no 不能同时为空")
        trade = self.ledger.get(biz.get("out_trade_no"), biz.get("trade_no"))
        if trade is None:
            raise GatewayError(
                "40004", "ACQ.TRADE_NOT_EXIST", "交易不存在",
                buyer_pay_amount=ZERO, invoice_amount=ZERO, out_trade_no=biz.get("out_trade_no", ""),
                point_amount=ZERO, receipt_amount=ZERO,
            )
        return trade

    @staticmethod
    def _amount(value, name: str) -> Decimal:
        try:
            return to_amount(value)
        except InvalidAmount as error:
            raise invalid_parameter(f"{name}: {error}") from None

    # alipay.trade.page.pay: the cashier

    def _page_pay(self, params, biz, urls) -> Response:
        for name in ("out_trade_no", "total_amount", "subject", "product_code"):
            if not biz.get(name):
                raise invalid_parameter(f"缺少 {name}")
        if biz["product_code"] != "FAST_INSTANT_TRADE_PAY":
            raise GatewayError("40004", "ACQ.PRODUCT_CODE_ERROR", "产品码错误: 电脑网站支付为 FAST_INSTANT_TRADE_PAY")
        try:
            notify_url = require_absolute_url("notify_url", params["notify_url"]) if params.get("notify_url") else None
            return_url = require_absolute_url("return_url", params["return_url"]) if params.get("return_url") else None
        except ValueError as error:
            raise invalid_parameter(str(error)) from None
        trade = self.ledger.open(
            str(biz["out_trade_no"]), self._amount(biz["total_amount"], "total_amount"), str(biz["subject"]),
            notify_url, return_url, beijing_now(),
        )
        return page(
            __package__, "cashier.html",
            action=urls.build("cashier"),
            out_trade_no=trade.out_trade_no,
            trade_no=trade.trade_no,
            subject=trade.subject,
            total_amount=format_amount(trade.total_amount),
            seller_id=self.config.seller_id,
        )

    def on_cashier(self, request: Request, urls) -> Response:
        """The shopper pays (with a scenario) or leaves; then back to the shop's return_url (303)."""
        action, scenario = request.form.get("action"), request.form.get("scenario") or "normal"
        if action not in ("pay", "cancel") or scenario not in SCENARIOS:
            return self._error(400, GatewayError("40004", "ACQ.INVALID_PARAMETER",
                                                 f"unknown action {action!r} or scenario {scenario!r}"))
        with self.ledger.lock:
            trade = self.ledger.get(request.form.get("out_trade_no"))
            if trade is None:
                return self._error(404, GatewayError("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在"))
            if trade.trade_status != WAIT:
                return self._error(409, GatewayError("40004", "ACQ.TRADE_STATUS_ERROR",
                                                     f"交易状态不合法: {trade.trade_status}"))
            if action == "cancel":
                return self._back(trade, {"out_trade_no": trade.out_trade_no})
            trade.trade_status, trade.gmt_payment = SUCCESS, beijing_now()
            if scenario == "brace":
                trade.body = BRACE_BODY
        self._notify(trade, scenario)
        return self._back(trade, self._return_params(trade))

    def _back(self, trade: Trade, params: Mapping) -> Response:
        if not trade.return_url:
            return page(__package__, "done.html", out_trade_no=trade.out_trade_no, trade_status=trade.trade_status)
        return redirect(with_query(trade.return_url, params), code=303)

    def _return_params(self, trade: Trade) -> dict:
        """The synchronous return's parameters, signed as Alipay signs them (the shop need not trust them)."""
        params = {
            "charset": "utf-8", "out_trade_no": trade.out_trade_no, "method": "alipay.trade.page.pay.return",
            "total_amount": format_amount(trade.total_amount), "trade_no": trade.trade_no,
            "auth_app_id": self.config.app_id, "version": "1.0", "app_id": self.config.app_id,
            "sign_type": "RSA2", "seller_id": self.config.seller_id, "timestamp": f"{beijing_now():{TIME_FORMAT}}",
        }
        params["sign"] = signing.sign(params, self.config.private_key)
        return params

    def _error(self, status: int, error: GatewayError) -> Response:
        return error_page(__package__, status, error.sub_msg, code=error.code, sub_code=error.sub_code)

    # the asynchronous notify

    def notify_params(self, trade: Trade, scenario: str = "normal") -> dict:
        """The notify for the trade's current status, signed (or spoilt, as the scenario says)."""
        amount = format_amount(trade.total_amount)
        paid = amount if trade.paid else ZERO
        params = {
            "notify_time": f"{beijing_now():{TIME_FORMAT}}", "notify_type": "trade_status_sync",
            "notify_id": f"{uuid.uuid4().hex}{secrets.token_hex(8)}", "charset": "utf-8", "version": "1.0",
            "sign_type": "RSA2", "app_id": self.config.app_id, "auth_app_id": self.config.app_id,
            "seller_id": self.config.seller_id, "buyer_id": trade.buyer_id, "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no, "trade_status": trade.trade_status, "total_amount": amount,
            "receipt_amount": paid, "invoice_amount": paid, "buyer_pay_amount": paid, "point_amount": ZERO,
            "subject": trade.subject, "gmt_create": f"{trade.gmt_create:{TIME_FORMAT}}",
        }
        if trade.paid:
            params["gmt_payment"] = f"{trade.gmt_payment:{TIME_FORMAT}}"
            params["fund_bill_list"] = json.dumps([{"amount": amount, "fundChannel": "ALIPAYACCOUNT"}])
        if trade.gmt_close:
            params["gmt_close"] = f"{trade.gmt_close:{TIME_FORMAT}}"
        if trade.body:
            params["body"] = trade.body
        if scenario == "empty":
            params["passback_params"] = ""  # sent empty, left out of the signature (as Alipay does)
        params["sign"] = signing.sign(params, self.config.private_key)
        if scenario == "tampered":
            params["sign"] = _tamper(params["sign"])
        return params

    def _notify(self, trade: Trade, scenario: str = "normal") -> None:
        if scenario == "lost" or not trade.notify_url:
            log.info("alipay-sandbox sends no notify for %s (%s)", trade.out_trade_no,
                     "lost on purpose" if scenario == "lost" else "no notify_url")
            return
        self.notifier.send(trade.notify_url, self.notify_params(trade, scenario),
                           copies=2 if scenario == "duplicate" else 1)

    # alipay.trade.query, .refund, .close

    def _query(self, biz: Mapping) -> dict:
        trade = self._trade(biz)
        with self.ledger.lock:
            paid = format_amount(trade.total_amount) if trade.paid else ZERO
            content = {
                "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
                "buyer_logon_id": trade.buyer_logon_id, "trade_status": trade.trade_status,
                "total_amount": format_amount(trade.total_amount), "buyer_pay_amount": paid,
                "point_amount": ZERO, "invoice_amount": paid, "receipt_amount": paid,
                "buyer_user_id": trade.buyer_id,
            }
            if trade.paid:
                content["send_pay_date"] = f"{trade.gmt_payment:{TIME_FORMAT}}"
            if trade.body:
                content["body"] = trade.body
            return content

    def _refund(self, biz: Mapping) -> dict:
        trade = self._trade(biz)
        amount = self._amount(biz.get("refund_amount"), "refund_amount")
        request_no = str(biz.get("out_request_no") or trade.out_trade_no)
        with self.ledger.lock:
            repeated = trade.refunds.get(request_no)
            if repeated is not None and repeated != amount:
                raise GatewayError("40004", "ACQ.DISCORDANT_REPEAT_REQUEST", "请求信息不一致: 同一退款请求号的金额不同")
            if repeated is None:
                if not trade.paid:
                    raise GatewayError("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
                if trade.trade_status == CLOSED:
                    raise GatewayError("40004", "ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
                if not biz.get("out_request_no") and amount != trade.total_amount:
                    raise GatewayError("40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "撤销或退款金额与订单金额不一致")
                if trade.refunded + amount > trade.total_amount:
                    raise GatewayError("40004", "ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额无效")
                trade.refunds[request_no] = amount
                if trade.refunded == trade.total_amount:
                    trade.trade_status, trade.gmt_close = CLOSED, beijing_now()
            return {
                "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
                "buyer_logon_id": trade.buyer_logon_id, "fund_change": "N" if repeated is not None else "Y",
                "refund_fee": format_amount(trade.refunded), "send_back_fee": format_amount(amount),
                "gmt_refund_pay": f"{beijing_now():{TIME_FORMAT}}", "buyer_user_id": trade.buyer_id,
            }

    def _close(self, biz: Mapping) -> dict:
        trade = self._trade(biz)
        with self.ledger.lock:
            if trade.trade_status != WAIT:
                raise GatewayError("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            trade.trade_status, trade.gmt_close = CLOSED, beijing_now()
        self._notify(trade)
        return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}


def make_gateway_app(settings: Mapping) -> GatewayApp:
    """The offline gateway for these settings (its keys are read, or generated, now)."""
    return GatewayApp(GatewayConfig.from_settings(settings))
