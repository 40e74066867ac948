"""The shop's side of Alipay: page pay, notifications verified as Alipay specifies, query/refund/close."""

import json
from collections.abc import Mapping
from decimal import Decimal
from html import escape
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from alipay.exceptions import AliPayException, AliPayValidationError

from ...core.errors import InvalidAmount, ProviderError, TradeNotFound
from ...core.model import Notification, Payment
from ...core.money import format_amount, to_amount
from ...ports.providers import Acknowledgement, Checkout, CheckoutUrls, Provider, Refund
from ..protocol import ACCEPTED, REFUSED, TRADE_STATUSES, parse_notification
from ..sitekit import require_absolute_url
from .client import AlipayClient
from .config import AlipayConfig

SUCCESS = "10000"
NOT_EXIST = "ACQ.TRADE_NOT_EXIST"

FORM = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>正在跳转到支付宝 / Redirecting to Alipay</title></head>
<body>
<form id="alipaysubmit" name="alipaysubmit" method="post" action="{action}">
{fields}
<noscript><button type="submit">前往支付宝付款 / Continue to Alipay</button></noscript>
</form>
<script>document.forms["alipaysubmit"].submit();</script>
</body></html>
"""


def rebase(url: str, base: str | None) -> str:
    """``url`` with its scheme and host replaced by ``base``'s (and ``base``'s path before its own)."""
    if not base:
        return url
    target, own = urlsplit(base), urlsplit(url)
    return urlunsplit((target.scheme, target.netloc, target.path.rstrip("/") + own.path, own.query, ""))


class AlipayProvider(Provider):
    """Alipay's page payment (电脑网站支付) through python-alipay-sdk, RSA2."""

    name = "alipay"
    title = "支付宝"

    def __init__(self, config: AlipayConfig):
        self.config = config
        self.confirm_paid_by_query = config.confirm_with_query
        self.client = AlipayClient(
            config.app_id, config.private_key, config.alipay_public_keys,
            gateway=config.server_gateway_url, timeout=config.timeout,
        )

    @classmethod
    def from_settings(cls, settings: Mapping) -> "AlipayProvider":
        return cls(AlipayConfig.from_settings(settings))

    # paying

    def checkout(self, payment: Payment, urls: CheckoutUrls) -> Checkout:
        notify_url = require_absolute_url("notify_url", rebase(urls.notify_url, self.config.notify_base_url))
        return_url = require_absolute_url("return_url", rebase(urls.return_url, self.config.return_base_url))
        signed = self.client.api_alipay_trade_page_pay(
            subject=payment.subject,
            out_trade_no=payment.out_trade_no,
            total_amount=format_amount(payment.total_amount),
            return_url=return_url,
            notify_url=notify_url,
        )
        gateway = self.config.gateway_url  # the browser may follow a path relative to the shop
        if self.config.checkout == "redirect":
            return Checkout(redirect_url=f"{gateway}?{signed}")
        fields = "\n".join(
            f'<input type="hidden" name="{escape(key)}" value="{escape(value)}">'
            for key, value in parse_qsl(signed, keep_blank_values=True)
        )
        return Checkout(html=FORM.format(action=escape(f"{gateway}?charset=utf-8"), fields=fields))

    # notifications

    def parse_notification(self, params: Mapping[str, str]) -> Notification:
        """Alipay's verification (any configured Alipay key), then app_id and seller_id are ours."""
        return parse_notification(params, self.config.alipay_public_keys, self.config.app_id,
                                  self.config.seller_id)

    def acknowledge(self, accepted: bool) -> Acknowledgement:
        return Acknowledgement(ACCEPTED if accepted else REFUSED)

    # server-to-server requests

    def query(self, payment: Payment) -> Notification:
        answer = self._call(self.client.api_alipay_trade_query, out_trade_no=payment.out_trade_no)
        if answer.get("out_trade_no") != payment.out_trade_no:
            raise ProviderError(f"asked for {payment.out_trade_no}, answered {answer.get('out_trade_no')}")
        status = TRADE_STATUSES.get(answer.get("trade_status"))
        if status is None:
            raise ProviderError(f"unknown trade_status {answer.get('trade_status')!r}")
        return Notification(
            out_trade_no=payment.out_trade_no,
            total_amount=_amount(answer, "total_amount"),
            status=status,
            trade_no=answer.get("trade_no"),
            raw=json.dumps(answer, ensure_ascii=False, sort_keys=True),
        )

    def close(self, payment: Payment) -> None:
        self._call(self.client.api_alipay_trade_close, out_trade_no=payment.out_trade_no)

    def refund(self, payment: Payment, amount: Decimal, request_no: str) -> Refund:
        answer = self._call(
            self.client.api_alipay_trade_refund,
            refund_amount=format_amount(to_amount(amount)),
            out_trade_no=payment.out_trade_no,
            out_request_no=request_no,
        )
        return Refund(
            request_no=request_no,
            refund_amount=to_amount(amount),
            refunded_total=_amount(answer, "refund_fee"),
            fund_change=answer.get("fund_change") == "Y",
            trade_no=answer.get("trade_no"),
        )

    def _call(self, request, **arguments) -> dict:
        """Send a signed request; the verified response, or ProviderError saying what went wrong."""
        try:
            answer = request(**arguments)
        except AliPayValidationError:
            raise ProviderError("the gateway's response does not verify with ALIPAY_PUBLIC_KEY") from None
        except AliPayException as error:  # an unsigned error answer (e.g. an unknown app_id)
            code = getattr(error, "_AliPayException__code", "") or ""
            raise ProviderError(str(error), code=str(code)) from None
        except (OSError, ValueError) as error:  # unreachable, timed out, not JSON
            raise ProviderError(f"Alipay gateway call failed: {error}") from None
        if answer.get("code") != SUCCESS:
            error_type = TradeNotFound if answer.get("sub_code") == NOT_EXIST else ProviderError
            raise error_type(answer.get("sub_msg") or answer.get("msg") or "error",
                             code=answer.get("code", ""), sub_code=answer.get("sub_code", ""))
        return answer


def _amount(answer: Mapping, field: str) -> Decimal:
    try:
        return to_amount(answer.get(field))
    except InvalidAmount as error:
        raise ProviderError(f"{field}: {error}") from None
