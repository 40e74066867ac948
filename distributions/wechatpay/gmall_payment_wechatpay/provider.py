"""The shop's side of WeChat Pay API v3: Native (a QR code) and H5 checkout, notifications, query/close/refund."""

import json
from collections.abc import Mapping
from decimal import Decimal
from urllib.parse import quote, urlsplit

import segno

from gmall_payment.core.errors import NotificationRejected, ProviderError, TradeNotFound
from gmall_payment.core.model import Notification, Payment, RefundNotice, TradeStatus
from gmall_payment.core.money import to_amount
from gmall_payment.plugins.urls import require_absolute_url, with_query
from gmall_payment.ports.provider import (
    Acknowledgement,
    Checkout,
    CheckoutQr,
    CheckoutUrls,
    Provider,
    Refund,
    origins,
)

from . import apiv3
from .client import Answer, ApiClient
from .config import NOTIFY_SCHEDULE, WechatPayConfig

#: WeChat Pay's trade_state values, in our words: PAYERROR and the waiting states change nothing.
TRADE_STATES = {
    "SUCCESS": TradeStatus.PAID,
    "REFUND": TradeStatus.PAID,  # paid, then (partly) refunded
    "CLOSED": TradeStatus.CLOSED,
    "REVOKED": TradeStatus.CLOSED,
    "NOTPAY": TradeStatus.PENDING,
    "USERPAYING": TradeStatus.PENDING,
    "PAYERROR": TradeStatus.PENDING,
}
REFUND_EVENTS = frozenset({"REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"})
NOT_FOUND = "ORDER_NOT_EXIST"
NATIVE, H5 = "/v3/pay/transactions/native", "/v3/pay/transactions/h5"
H5_ORIGIN = "https://wx.tenpay.com"  # where h5_url points
REFUNDS = "/v3/refund/domestic/refunds"


def _fen_total(plain: Mapping, reject) -> Decimal:
    amount = plain.get("amount")
    try:
        return apiv3.from_fen(amount.get("total") if isinstance(amount, Mapping) else None)
    except ValueError as error:
        raise reject(f"amount.total: {error}") from None


class WechatPayProvider(Provider):
    """WeChat Pay's Native payment (扫码支付): the shopper scans a QR code with the WeChat app."""

    name = "wechatpay"
    title = "微信支付"
    payment_code = 2  # the seed's payment_type
    #: Reconciliation asks when WeChat Pay would have retried its notify.
    query_schedule = tuple(float(wait) for wait in NOTIFY_SCHEDULE[1:])
    #: What WeChat Pay signs a notification with: kept in the notify log with its body, for a replay.
    notification_headers = (
        "Wechatpay-Signature",
        "Wechatpay-Timestamp",
        "Wechatpay-Nonce",
        "Wechatpay-Serial",
        "Wechatpay-Signature-Type",
    )

    def __init__(self, config: WechatPayConfig):
        self.config = config
        self.client = ApiClient(config)
        self.offline_setting = "WECHATPAY_PRIVATE_KEY_FILE" if config.offline else None

    # paying

    def checkout(self, payment: Payment, urls: CheckoutUrls) -> Checkout:
        """H5 pay for a mobile browser (its IP known), else Native: a QR code for a computer."""
        if urls.client_ip and urls.mobile:
            return self._h5(payment, urls)
        answer = self._ok(self.client.call("POST", NATIVE, self.order_body(payment, urls)))
        code_url = answer.body.get("code_url")
        if not isinstance(code_url, str) or not code_url.startswith("weixin://"):
            raise ProviderError(f"WeChat Pay's Native answer has no code_url: {answer.body}")
        return Checkout(
            qr=CheckoutQr(
                code_url=code_url,
                svg=segno.make(code_url, error="m").svg_inline(scale=5, title="微信支付二维码"),
                expires_at=urls.expires_at,
                scan_url=f"{self.config.api_url}/scan?code_url={quote(code_url)}"
                if self.config.offline
                else None,
                instructions="请使用微信扫一扫 / Scan with WeChat",
            )
        )

    def _h5(self, payment: Payment, urls: CheckoutUrls) -> Checkout:
        """H5 pay: WeChat Pay's cashier in the mobile browser, then back to our return page."""
        body = {
            **self.order_body(payment, urls),
            "scene_info": {"payer_client_ip": urls.client_ip, "h5_info": {"type": "Wap"}},
        }
        h5_url = self._ok(self.client.call("POST", H5, body)).body.get("h5_url")
        if not isinstance(h5_url, str) or urlsplit(h5_url).scheme not in ("http", "https"):
            raise ProviderError(f"WeChat Pay's H5 answer has no h5_url: {h5_url!r}")
        back = with_query(
            require_absolute_url("return_url", urls.return_url), {"out_trade_no": payment.out_trade_no}
        )
        return Checkout(redirect_url=with_query(h5_url, {"redirect_url": back}))

    def checkout_origins(self) -> tuple[str, ...]:
        """H5 sends the browser (by a redirect after pay.html's form) to WeChat Pay's cashier."""
        return origins(self.config.api_url if self.config.offline else H5_ORIGIN)

    def order_body(self, payment: Payment, urls: CheckoutUrls) -> dict:
        """The Native order: amount in fen (exact), description within 127 bytes, time_expire in +08:00."""
        body = {
            "appid": self.config.appid,
            "mchid": self.config.mchid,
            "description": apiv3.description(payment.subject),
            "out_trade_no": payment.out_trade_no,
            "notify_url": self._notify_url(urls.notify_url),
            "amount": {"total": apiv3.to_fen(to_amount(payment.total_amount)), "currency": "CNY"},
        }
        if urls.expires_at:
            body["time_expire"] = apiv3.rfc3339(urls.expires_at)
        return body

    def _notify_url(self, url: str) -> str:
        if self.config.notify_base_url:
            url = self.config.notify_base_url + urlsplit(url).path
        return require_absolute_url("notify_url", url)

    # notifications

    def parse_notification(self, params: Mapping[str, str]) -> Notification:
        raise NotificationRejected(
            "bad_signature", "WeChat Pay signs its JSON body and headers: no form verifies"
        )

    def parse_notification_request(
        self, params: Mapping[str, str], body: str, headers: Mapping[str, str]
    ) -> Notification:
        """The signature over the raw body (the key of Wechatpay-Serial), the timestamp, then the resource."""
        return self._parse_notification(body, headers, apiv3.TIMESTAMP_TOLERANCE)

    def parse_replayed_notification(
        self, params: Mapping[str, str], body: str, headers: Mapping[str, str]
    ) -> Notification:
        """A kept notification replayed by an operator: its signature as received is verified
        again, its timestamp's 5-minute window is not applied (it was applied when it came)."""
        return self._parse_notification(body, headers, None)

    def _parse_notification(
        self, body: str, headers: Mapping[str, str], tolerance: float | None
    ) -> Notification:
        try:
            apiv3.verify_headers(headers, body, self.config.wechat_keys, tolerance)
        except apiv3.StaleTimestamp as error:
            raise NotificationRejected("stale_timestamp", str(error)) from None
        except apiv3.SignatureError as error:
            raise NotificationRejected("bad_signature", str(error)) from None
        try:
            event = json.loads(body)
            plain = apiv3.decrypt(event["resource"], self.config.apiv3_key)
        except (ValueError, KeyError, TypeError, apiv3.SignatureError) as error:
            raise NotificationRejected("undecryptable", str(error)) from None
        if plain.get("mchid") != self.config.mchid:
            raise NotificationRejected("wrong_merchant", str(plain.get("mchid")))
        event_type = str(event.get("event_type", ""))
        if event_type not in REFUND_EVENTS and plain.get("appid") != self.config.appid:
            raise NotificationRejected("wrong_app", str(plain.get("appid")))
        if not plain.get("out_trade_no"):
            raise NotificationRejected("malformed", "no out_trade_no")

        def malformed(detail):
            return NotificationRejected("malformed", detail)

        total = _fen_total(plain, malformed)
        refund = None
        if event_type in REFUND_EVENTS:
            refund = self._refund_notice(event_type, plain, malformed)
            status = TradeStatus.PAID  # a refunded trade was paid; the notice says what became of the refund
        else:
            status = TRADE_STATES.get(str(plain.get("trade_state")))
            if status is None:
                raise NotificationRejected("unknown_status", str(plain.get("trade_state")))
        return Notification(
            out_trade_no=str(plain["out_trade_no"]),
            total_amount=total,
            status=status,
            trade_no=plain.get("transaction_id") or None,
            notify_id=str(event.get("id") or "") or None,
            raw=json.dumps({"event_type": event_type, "resource": plain}, ensure_ascii=False, sort_keys=True),
            refund=refund,
        )

    @staticmethod
    def _refund_notice(event_type: str, plain: Mapping, malformed) -> RefundNotice:
        """REFUND.SUCCESS: refunded; REFUND.ABNORMAL, REFUND.CLOSED: WeChat Pay gave up on it."""
        state = str(plain.get("refund_status"))
        if not plain.get("out_refund_no") or event_type.split(".")[1] != state:
            raise malformed(
                f"{event_type} with out_refund_no {plain.get('out_refund_no')!r}, refund_status {state!r}"
            )
        amount = plain.get("amount") if isinstance(plain.get("amount"), Mapping) else {}
        return RefundNotice(
            str(plain["out_refund_no"]),
            _fen_total({"amount": {"total": amount.get("refund")}}, malformed),
            succeeded=state == "SUCCESS",
        )

    def acknowledge(self, accepted: bool) -> Acknowledgement:
        """204 with no body accepts; a 4xx with WeChat Pay's FAIL body makes it retry."""
        if accepted:
            return Acknowledgement("", status=204)
        return Acknowledgement(
            json.dumps({"code": "FAIL", "message": "notification refused"}),
            content_type="application/json",
            status=400,
        )

    # server-to-server requests

    def query(self, payment: Payment) -> Notification:
        path = f"/v3/pay/transactions/out-trade-no/{quote(payment.out_trade_no, safe='')}?mchid={self.config.mchid}"
        answer = self.client.call("GET", path)
        if answer.status == 404 or answer.body.get("code") == NOT_FOUND:
            raise answer.error(TradeNotFound)
        plain = self._ok(answer).body
        if (plain.get("out_trade_no"), plain.get("mchid"), plain.get("appid")) != (
            payment.out_trade_no,
            self.config.mchid,
            self.config.appid,
        ):
            raise ProviderError(
                f"asked about {payment.out_trade_no}, answered about {plain.get('out_trade_no')} "
                f"of {plain.get('mchid')}/{plain.get('appid')}"
            )
        status = TRADE_STATES.get(str(plain.get("trade_state")))
        if status is None:
            raise ProviderError(f"unknown trade_state {plain.get('trade_state')!r}")
        return Notification(
            out_trade_no=payment.out_trade_no,
            total_amount=_fen_total(plain, ProviderError),
            status=status,
            trade_no=plain.get("transaction_id") or None,
            raw=json.dumps(plain, ensure_ascii=False, sort_keys=True),
        )

    def close(self, payment: Payment) -> None:
        path = f"/v3/pay/transactions/out-trade-no/{quote(payment.out_trade_no, safe='')}/close"
        answer = self.client.call("POST", path, {"mchid": self.config.mchid})
        if answer.status == 404 or answer.body.get("code") == NOT_FOUND:
            raise answer.error(TradeNotFound)
        self._ok(answer)

    def refund(self, payment: Payment, amount: Decimal, request_no: str) -> Refund:
        """``request_no`` is out_refund_no: the same one again is the same refund. WeChat Pay's
        PROCESSING is no answer yet (retryable): asked again, it says SUCCESS once done."""
        amount = to_amount(amount)
        body = {
            "out_trade_no": payment.out_trade_no,
            "out_refund_no": request_no,
            "amount": {
                "refund": apiv3.to_fen(amount),
                "total": apiv3.to_fen(to_amount(payment.total_amount)),
                "currency": "CNY",
            },
        }
        base = self.config.notify_base_url or (self.config.settings or {}).get("PUBLIC_URL")
        if base:
            body["notify_url"] = f"{base.rstrip('/')}/notify/{self.name}"
        plain = self._ok(self.client.call("POST", REFUNDS, body)).body
        status = plain.get("status")
        if plain.get("out_refund_no") != request_no:
            raise ProviderError(f"asked for refund {request_no}, answered about {plain.get('out_refund_no')}")
        if status == "PROCESSING":
            raise ProviderError(f"refund {request_no} is PROCESSING at WeChat Pay", retryable=True)
        if status != "SUCCESS":
            raise ProviderError(f"refund {request_no} is {status}", code=str(status), retryable=False)
        refunded = _fen_total({"amount": {"total": (plain.get("amount") or {}).get("refund")}}, ProviderError)
        if refunded != amount:
            raise ProviderError(f"refund {request_no} refunded {refunded}, not {amount}")
        return Refund(
            request_no=request_no,
            refund_amount=amount,
            refunded_total=Decimal(payment.refunded) + amount,
            fund_change=True,
            trade_no=plain.get("transaction_id"),
        )

    @staticmethod
    def _ok(answer: Answer) -> Answer:
        if not answer.ok:
            raise answer.error()
        return answer
