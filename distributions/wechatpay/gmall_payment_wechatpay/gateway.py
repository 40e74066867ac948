"""The offline WeChat Pay gateway: API v3 as WeChat Pay serves it, for development and tests.

A plain WSGI app (werkzeug), mounted in the shop under ``/wechatpay-sandbox`` on the embedded
default. Like WeChat Pay it

- verifies every API request's ``Authorization`` (WECHATPAY2-SHA256-RSA2048 over method,
  path with query, timestamp, nonce and body, with the merchant's key; the mchid and serial
  ours; a timestamp within 5 minutes) and answers a bad one ``401 SIGN_ERROR``;
- signs every answer (``Wechatpay-Timestamp``, ``-Nonce``, ``-Signature``, ``-Serial``: its
  ``PUB_KEY_ID_…``), errors as ``{"code": …, "message": …}`` with WeChat Pay's statuses;
- serves Native orders (``code_url``), the query by out_trade_no, close, and refunds
  (``out_refund_no`` makes a repeated refund the same refund; ``NOT_ENOUGH`` when ``balance``
  is short), with ``ORDERPAID``, ``ORDER_CLOSED``, ``ORDER_NOT_EXIST``…;
- plays the shopper's phone: ``/scan?code_url=…`` pays or cancels, then posts the notify
  (``TRANSACTION.SUCCESS``, the resource AEAD_AES_256_GCM-encrypted with the APIv3 key),
  signed afresh for each attempt and retried on WeChat Pay's series (15s, 15s, 30s, 3m, 10m,
  20m, 30m, 30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h, divided by ``WECHATPAY_SANDBOX_NOTIFY_SPEEDUP``)
  until the shop answers 200 or 204; scenarios: duplicate, tampered body, wrong key, stale
  timestamp, lost. A refund notifies ``REFUND.SUCCESS`` to the refund's notify_url.
A trade past its ``time_expire`` is closed: the phone cannot pay it, a query says CLOSED.
"""

import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from gmall_payment.plugins import rsa2
from gmall_payment.plugins.sandbox_site import Site, error_page, page
from gmall_payment.plugins.urls import require_absolute_url

from . import apiv3
from .config import GatewayConfig

log = logging.getLogger(__name__)

SCENARIOS = ("normal", "duplicate", "tampered", "wrong_key", "stale", "lost")
NOTPAY, SUCCESS, CLOSED, REFUND = "NOTPAY", "SUCCESS", "CLOSED", "REFUND"
STATE_DESC = {NOTPAY: "订单未支付", SUCCESS: "支付成功", CLOSED: "已关闭", REFUND: "转入退款"}
STALE_SECONDS = 600


class ApiError(Exception):
    """An error answer: HTTP status, WeChat Pay's code and message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def param_error(message: str) -> ApiError:
    return ApiError(400, "PARAM_ERROR", message)


@dataclass
class Trade:
    out_trade_no: str
    transaction_id: str
    total: int  # fen
    description: str
    notify_url: str
    code: str  # the pr of code_url
    create_time: datetime
    time_expire: datetime | None = None
    trade_state: str = NOTPAY
    success_time: datetime | None = None
    refunds: dict = field(default_factory=dict)  # out_refund_no -> (refund_id, fen, time)

    @property
    def code_url(self) -> str:
        return f"weixin://wxpay/bizpayurl?pr={self.code}"

    @property
    def refunded(self) -> int:
        return sum(fen for _, fen, _ in self.refunds.values())


class WechatNotifier:
    """Posts JSON notifications from daemon threads, signed afresh each attempt, until 200/204."""

    def __init__(self, schedule, sign, timeout: float = 10.0):
        self.schedule, self.sign, self.timeout = tuple(schedule), sign, timeout
        self.attempts: list[tuple[str, int | None, str]] = []  # (notify id, status, body)
        self._pending = 0
        self._idle = threading.Condition()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def send(self, url: str, event: Mapping, scenario: str = "normal") -> None:
        if scenario == "lost":
            log.info("wechatpay-sandbox loses notify %s on purpose", event["id"])
            return
        with self._idle:
            self._pending += 1
        copies = 2 if scenario == "duplicate" else 1
        threading.Thread(
            target=self._run,
            args=(url, event, scenario, copies),
            daemon=True,
            name=f"wechatpay-sandbox-notify-{event['id']}",
        ).start()

    def join(self, timeout: float | None = None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self, url, event, scenario, copies):
        try:
            for _ in range(copies):
                for wait in self.schedule:
                    time.sleep(wait)
                    status, text = self._post(url, *self.sign(event, scenario))
                    with self._idle:
                        self.attempts.append((event["id"], status, text))
                    if status in (200, 204):
                        break
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _post(self, url: str, body: str, headers: Mapping[str, str]) -> tuple[int | None, str]:
        request = urllib.request.Request(
            url,
            data=body.encode("utf-8"),
            method="POST",
            headers={"Content-Type": "application/json", **headers},
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, response.read(4096).decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read(4096).decode("utf-8", "replace")
        except OSError as error:
            return None, f"{type(error).__name__}: {error}"


class GatewayApp(Site):
    """The API, the phone's scan page; ``trades``, ``notifier`` and ``balance`` are public for tests."""

    def __init__(self, config: GatewayConfig):
        self.config = config
        self.lock = threading.RLock()
        self.trades: dict[str, Trade] = {}
        self.balance: int | None = None  # fen the merchant can refund; None: enough
        #: Refunds answer PROCESSING first (then the notify, and later answers, say SUCCESS), as
        #: WeChat Pay's usually do; False: SUCCESS at once.
        self.refunds_processing = False
        self._wrong_key = None  # made on first use (the "wrong_key" scenario)
        self.notifier = WechatNotifier(config.schedule, self._signed_event)
        self.url_map = Map(
            [
                Rule("/v3/pay/transactions/native", endpoint="native", methods=["POST"]),
                Rule("/v3/pay/transactions/h5", endpoint="h5_order", methods=["POST"]),
                Rule("/v3/pay/transactions/out-trade-no/<out_trade_no>", endpoint="query", methods=["GET"]),
                Rule(
                    "/v3/pay/transactions/out-trade-no/<out_trade_no>/close",
                    endpoint="close",
                    methods=["POST"],
                ),
                Rule("/v3/refund/domestic/refunds", endpoint="refund", methods=["POST"]),
                Rule("/scan", endpoint="scan", methods=["GET", "POST"]),
                Rule("/h5", endpoint="scan", methods=["GET"]),
            ]
        )

    # the API: verified requests, signed answers

    def _api(self, request: Request, handler, *args) -> Response:
        try:
            self._verify(request)
            status, body = handler(request, *args)
        except ApiError as error:
            log.info("wechatpay-sandbox %s %s refused: %s", request.method, request.path, error)
            status, body = error.status, {"code": error.code, "message": error.message}
        text = "" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        headers = apiv3.signed_headers(text, self.config.public_key_id, self.config.private_key)
        headers["Request-ID"] = uuid.uuid4().hex
        return Response(
            text,
            status=status,
            headers=headers,
            content_type="application/json; charset=utf-8" if text else None,
        )

    def _verify(self, request: Request) -> None:
        try:
            fields = apiv3.parse_authorization(request.headers.get("Authorization", ""))
        except apiv3.SignatureError as error:
            raise ApiError(401, "SIGN_ERROR", f"签名错误: {error}") from None
        if fields["mchid"] != self.config.mchid:
            raise ApiError(401, "SIGN_ERROR", f"签名错误: mchid {fields['mchid']} 不是本商户")
        if fields["serial_no"].upper() != self.config.merchant_serial:
            raise ApiError(401, "SIGN_ERROR", f"签名错误: 商户证书序列号 {fields['serial_no']} 不存在")
        path = request.script_root + request.path
        query = request.query_string.decode("latin-1")
        message = apiv3.request_message(
            request.method,
            f"{path}?{query}" if query else path,
            fields["timestamp"],
            fields["nonce_str"],
            request.get_data(as_text=True),
        )
        if not apiv3.verify(message, fields["signature"], self.config.merchant_public_key):
            raise ApiError(401, "SIGN_ERROR", "签名错误: 请检查签名串与商户私钥")
        try:
            apiv3.check_timestamp(fields["timestamp"])
        except apiv3.SignatureError as error:
            raise ApiError(401, "SIGN_ERROR", f"签名错误: {error}") from None

    @staticmethod
    def _json(request: Request) -> dict:
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            raise param_error("请求体不是合法的 JSON") from None
        if not isinstance(body, dict):
            raise param_error("请求体不是 JSON 对象")
        return body

    def _trade(self, out_trade_no: str) -> Trade:
        with self.lock:
            trade = self.trades.get(out_trade_no)
            if trade is None:
                raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
            self._expire_if_due(trade)
            return trade

    @staticmethod
    def _expire_if_due(trade: Trade) -> None:
        if (
            trade.trade_state == NOTPAY
            and trade.time_expire
            and datetime.now(apiv3.BEIJING) >= trade.time_expire
        ):
            trade.trade_state = CLOSED

    def on_native(self, request: Request, urls) -> Response:
        return self._api(
            request, lambda request: (200, {"code_url": self._open(self._json(request)).code_url})
        )

    def on_h5_order(self, request: Request, urls) -> Response:
        return self._api(request, self._h5)

    def _h5(self, request: Request):
        """H5 pay: as Native, with the shopper's IP; ``h5_url`` opens the (mobile) cashier page."""
        body = self._json(request)
        scene = body.get("scene_info") if isinstance(body.get("scene_info"), dict) else {}
        h5_info = scene.get("h5_info") if isinstance(scene.get("h5_info"), dict) else {}
        if not scene.get("payer_client_ip") or h5_info.get("type") not in ("Wap", "iOS", "Android"):
            raise param_error("H5 下单须有 scene_info.payer_client_ip 与 scene_info.h5_info.type")
        trade = self._open(body)
        return 200, {
            "h5_url": f"{request.host_url.rstrip('/')}{request.script_root}/h5?prepay_id={trade.code}"
        }

    def _open(self, body: Mapping) -> Trade:
        """The trade of a Native or H5 order: new, or the same one again; ApiError if it cannot be paid."""
        if body.get("appid") != self.config.appid or body.get("mchid") != self.config.mchid:
            raise ApiError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        description, out_trade_no = body.get("description"), body.get("out_trade_no")
        if not isinstance(description, str) or not 1 <= len(description.encode("utf-8")) <= 127:
            raise param_error("description 长度须为 1-127 字节")
        if not isinstance(out_trade_no, str) or not 6 <= len(out_trade_no) <= 32:
            raise param_error("out_trade_no 长度须为 6-32")
        amount = body.get("amount") if isinstance(body.get("amount"), dict) else {}
        total = amount.get("total")
        if isinstance(total, bool) or not isinstance(total, int) or total <= 0:
            raise param_error("amount.total 须为正整数 (分)")
        if amount.get("currency", "CNY") != "CNY":
            raise param_error("amount.currency 仅支持 CNY")
        try:
            notify_url = require_absolute_url("notify_url", body.get("notify_url") or "")
            time_expire = apiv3.parse_rfc3339(body["time_expire"]) if body.get("time_expire") else None
        except ValueError as error:
            raise param_error(str(error)) from None
        with self.lock:
            trade = self.trades.get(out_trade_no)
            if trade is None:
                trade = self.trades[out_trade_no] = Trade(
                    out_trade_no,
                    f"4200{secrets.randbelow(10**24):024d}",
                    total,
                    description,
                    notify_url,
                    secrets.token_urlsafe(12),
                    datetime.now(apiv3.BEIJING),
                    time_expire,
                )
            elif (trade.total, trade.description) != (total, description):
                raise ApiError(
                    400, "INVALID_REQUEST", "201 商户订单号重复: 同一 out_trade_no 的金额或描述不同"
                )
            else:
                trade.notify_url, trade.time_expire = notify_url, time_expire
            self._expire_if_due(trade)
            if trade.trade_state in (SUCCESS, REFUND):
                raise ApiError(400, "ORDERPAID", "该订单已支付")
            if trade.trade_state == CLOSED:
                raise ApiError(400, "ORDER_CLOSED", "订单已关闭")
            return trade

    def on_query(self, request: Request, urls, out_trade_no: str) -> Response:
        return self._api(request, self._query, out_trade_no)

    def _query(self, request: Request, out_trade_no: str):
        if request.args.get("mchid") != self.config.mchid:
            raise param_error("mchid 与请求的商户不一致")
        trade = self._trade(out_trade_no)
        with self.lock:
            answer = {
                "appid": self.config.appid,
                "mchid": self.config.mchid,
                "out_trade_no": trade.out_trade_no,
                "trade_type": "NATIVE",
                "trade_state": trade.trade_state,
                "trade_state_desc": STATE_DESC[trade.trade_state],
                "attach": "",
                "amount": {"total": trade.total, "currency": "CNY", "payer_currency": "CNY"},
            }
            if trade.success_time:
                answer.update(
                    transaction_id=trade.transaction_id,
                    bank_type="OTHERS",
                    success_time=trade.success_time.isoformat(timespec="seconds"),
                    payer={"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
                )
                answer["amount"]["payer_total"] = trade.total
            return 200, answer

    def on_close(self, request: Request, urls, out_trade_no: str) -> Response:
        return self._api(request, self._close, out_trade_no)

    def _close(self, request: Request, out_trade_no: str):
        if self._json(request).get("mchid") != self.config.mchid:
            raise param_error("mchid 与请求的商户不一致")
        trade = self._trade(out_trade_no)
        with self.lock:
            if trade.trade_state in (SUCCESS, REFUND):
                raise ApiError(400, "ORDERPAID", "订单已支付, 不能关闭")
            trade.trade_state = CLOSED
        return 204, None

    def on_refund(self, request: Request, urls) -> Response:
        return self._api(request, self._refund)

    def _refund(self, request: Request):
        body = self._json(request)
        out_refund_no = body.get("out_refund_no")
        if not isinstance(out_refund_no, str) or not 1 <= len(out_refund_no) <= 64:
            raise param_error("out_refund_no 长度须为 1-64")
        amount = body.get("amount") if isinstance(body.get("amount"), dict) else {}
        refund, total = amount.get("refund"), amount.get("total")
        if any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in (refund, total)):
            raise param_error("amount.refund 与 amount.total 须为正整数 (分)")
        with self.lock:
            trade = self.trades.get(str(body.get("out_trade_no")))
            if trade is None:
                raise ApiError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
            if total != trade.total:
                raise param_error("amount.total 与订单金额不一致")
            earlier = trade.refunds.get(out_refund_no)
            if earlier is not None and earlier[1] != refund:
                raise ApiError(400, "INVALID_REQUEST", "out_refund_no 已用于金额不同的另一笔退款")
            if earlier is None:
                if trade.success_time is None:
                    raise ApiError(400, "INVALID_REQUEST", "订单未支付, 不能退款")
                if trade.refunded + refund > trade.total:
                    raise ApiError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
                if self.balance is not None and refund > self.balance:
                    raise ApiError(403, "NOT_ENOUGH", "基本账户余额不足，请充值后重新发起")
                if self.balance is not None:
                    self.balance -= refund
                trade.refunds[out_refund_no] = (
                    f"5030{secrets.randbelow(10**24):024d}",
                    refund,
                    datetime.now(apiv3.BEIJING),
                )
                trade.trade_state = REFUND
                if body.get("notify_url"):
                    self.notifier.send(body["notify_url"], self._refund_event(trade, out_refund_no))
                if self.refunds_processing:
                    return 200, {**self._refund_answer(trade, out_refund_no), "status": "PROCESSING"}
            return 200, self._refund_answer(trade, out_refund_no)

    def _refund_answer(self, trade: Trade, out_refund_no: str) -> dict:
        refund_id, fen, at = trade.refunds[out_refund_no]
        return {
            "refund_id": refund_id,
            "out_refund_no": out_refund_no,
            "transaction_id": trade.transaction_id,
            "out_trade_no": trade.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "success_time": at.isoformat(timespec="seconds"),
            "create_time": at.isoformat(timespec="seconds"),
            "status": "SUCCESS",
            "funds_account": "AVAILABLE",
            "amount": {
                "total": trade.total,
                "refund": fen,
                "payer_total": trade.total,
                "payer_refund": fen,
                "settlement_refund": fen,
                "settlement_total": trade.total,
                "discount_refund": 0,
                "currency": "CNY",
            },
        }

    # the phone

    def on_scan(self, request: Request, urls) -> Response:
        code_url = request.values.get("code_url", "")
        code = request.values.get("prepay_id") or parse_qs(urlsplit(code_url).query).get("pr", [""])[0]
        back = request.values.get("redirect_url", "")
        with self.lock:
            trade = next((t for t in self.trades.values() if t.code == code), None)
            if trade is None:
                return error_page(__package__, 404, "二维码无效: 没有这个订单", code="ORDER_NOT_EXIST")
            self._expire_if_due(trade)
            if trade.trade_state != NOTPAY:
                return error_page(
                    __package__, 409, f"订单{STATE_DESC[trade.trade_state]}", code=trade.trade_state
                )
            if request.method == "GET":
                return page(
                    __package__,
                    "scan.html",
                    action=urls.build("scan"),
                    code_url=trade.code_url,
                    redirect_url=back,
                    out_trade_no=trade.out_trade_no,
                    description=trade.description,
                    amount=_yuan(trade.total),
                    mchid=self.config.mchid,
                )
            if request.form.get("action") != "pay":
                return page(
                    __package__,
                    "done.html",
                    trade_state=trade.trade_state,
                    message="已取消支付 / cancelled",
                    out_trade_no=trade.out_trade_no,
                )
            scenario = request.form.get("scenario") or "normal"
            if scenario not in SCENARIOS:
                return error_page(__package__, 400, f"unknown scenario {scenario!r}", code="PARAM_ERROR")
            trade.trade_state, trade.success_time = SUCCESS, datetime.now(apiv3.BEIJING)
            self.notifier.send(trade.notify_url, self._paid_event(trade), scenario)
        if back and _same_site(back, trade.notify_url):  # H5: back to the shop, as WeChat Pay does
            return redirect(back, code=303)
        return page(
            __package__,
            "done.html",
            trade_state=SUCCESS,
            message="支付成功 / paid",
            out_trade_no=trade.out_trade_no,
        )

    # notifications

    def _event(self, event_type: str, summary: str, original_type: str, plain: Mapping) -> dict:
        return {
            "id": str(uuid.uuid4()),
            "create_time": datetime.now(apiv3.BEIJING).isoformat(timespec="seconds"),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": apiv3.encrypt(plain, self.config.apiv3_key, original_type, original_type),
        }

    def _paid_event(self, trade: Trade) -> dict:
        return self._event(
            "TRANSACTION.SUCCESS",
            "支付成功",
            "transaction",
            {
                "appid": self.config.appid,
                "mchid": self.config.mchid,
                "out_trade_no": trade.out_trade_no,
                "transaction_id": trade.transaction_id,
                "trade_type": "NATIVE",
                "trade_state": SUCCESS,
                "trade_state_desc": STATE_DESC[SUCCESS],
                "bank_type": "OTHERS",
                "attach": "",
                "success_time": trade.success_time.isoformat(timespec="seconds"),
                "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
                "amount": {
                    "total": trade.total,
                    "payer_total": trade.total,
                    "currency": "CNY",
                    "payer_currency": "CNY",
                },
            },
        )

    def _refund_event(self, trade: Trade, out_refund_no: str) -> dict:
        refund_id, fen, at = trade.refunds[out_refund_no]
        return self._event(
            "REFUND.SUCCESS",
            "退款成功",
            "refund",
            {
                "mchid": self.config.mchid,
                "out_trade_no": trade.out_trade_no,
                "transaction_id": trade.transaction_id,
                "out_refund_no": out_refund_no,
                "refund_id": refund_id,
                "refund_status": "SUCCESS",
                "success_time": at.isoformat(timespec="seconds"),
                "user_received_account": "支付用户零钱",
                "amount": {
                    "total": trade.total,
                    "refund": fen,
                    "payer_total": trade.total,
                    "payer_refund": fen,
                },
            },
        )

    def _signed_event(self, event: Mapping, scenario: str) -> tuple[str, dict]:
        """The event's body and headers for one attempt, spoilt as the scenario says."""
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        key = self._other_key() if scenario == "wrong_key" else self.config.private_key
        stamp = int(time.time()) - STALE_SECONDS if scenario == "stale" else None
        headers = apiv3.signed_headers(body, self.config.public_key_id, key, timestamp=stamp)
        if scenario == "tampered":
            body = body.replace('"summary":"', '"summary":"篡改 ', 1)
        return body, headers

    def _other_key(self):
        if self._wrong_key is None:
            self._wrong_key = rsa2.generate_key_pair()[0]
        return self._wrong_key


def _same_site(url: str, notify_url: str) -> bool:
    """Whether ``url`` is on the merchant's site (WeChat Pay sends H5 shoppers back to its registered domain only)."""
    return urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc == urlsplit(notify_url).netloc


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def make_gateway_app(settings: Mapping) -> GatewayApp:
    """The offline gateway for these settings (its keys are read, or generated, now)."""
    return GatewayApp(GatewayConfig.from_settings(settings))
