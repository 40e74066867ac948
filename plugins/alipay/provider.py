"""The shop's side of Alipay: page pay, notifications verified as Alipay specifies, query/refund/close."""

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from alipay.exceptions import AliPayException, AliPayValidationError

from ...core.errors import ProviderError, TradeNotFound
from ...core.model import Notification, Payment
from ...core.money import format_amount, to_amount
from ...ports.provider import Acknowledgement, Checkout, CheckoutForm, CheckoutUrls, Provider, Refund, origins
from ..alipay_protocol import ACCEPTED, REFUSED, parse_notification, query_answer, refund_answer
from ..urls import require_absolute_url
from . import bills
from .certificates import CertificateClient
from .client import AlipayClient, beijing_time
from .config import NOTIFY_SCHEDULE, WAP_PAY_PRODUCT, AlipayConfig

SUCCESS = "10000"
NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
#: Answers after which the same request, repeated as it was, may succeed (Alipay says so of its
#: system errors; 20000 is its "service currently unavailable").
RETRYABLE = frozenset({"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error", "ACQ.SYSTEM_BUSY"})


def rebase(url: str, base: str | None) -> str:
    """``url`` with its scheme and host replaced by ``base``'s (and ``base``'s path before its own)."""
    if not base:
        return url
    target, own = urlsplit(base), urlsplit(url)
    return urlunsplit((target.scheme, target.netloc, target.path.rstrip("/") + own.path, own.query, ""))


class AlipayProvider(Provider):
    """Alipay's page payment (电脑网站支付) and, for phones, its wap payment (手机网站支付)
    through python-alipay-sdk, RSA2: one trade, one notify and one return either way."""

    name = "alipay"
    title = "支付宝"
    payment_code = 1  # the seed's payment_type
    #: Reconciliation asks when Alipay would have retried its notify: 4m, 10m, 10m, 1h, 2h, 6h, 15h.
    query_schedule = tuple(float(wait) for wait in NOTIFY_SCHEDULE[1:])

    def __init__(self, config: AlipayConfig):
        self.config = config
        self.confirm_paid_by_query = config.confirm_with_query
        # Certificate mode: the client verifies with the certificate a response names.
        client, verifiers = (
            (CertificateClient, config.certificates)
            if config.certificates
            else (AlipayClient, config.alipay_public_keys)
        )
        self.client = client(
            config.app_id,
            config.private_key,
            verifiers,
            gateway=config.server_gateway_url,
            timeout=config.timeout,
        )

    def use_mounted_gateway(self, gateway) -> None:
        """The offline gateway the shop mounts, when this provider points at it: query, refund and
        close are answered there in process (no ``PUBLIC_URL`` needed)."""
        if self.config.serves_offline_gateway:
            self.client.mounted = gateway

    @classmethod
    def from_settings(cls, settings: Mapping) -> "AlipayProvider":
        return cls(AlipayConfig.from_settings(settings))

    # paying

    def checkout(self, payment: Payment, urls: CheckoutUrls) -> Checkout:
        notify_url = require_absolute_url("notify_url", rebase(urls.notify_url, self.config.notify_base_url))
        return_url = require_absolute_url("return_url", rebase(urls.return_url, self.config.return_base_url))
        # time_expire: Alipay refuses payment once the order is closed here.
        expiry = {"time_expire": beijing_time(urls.expires_at)} if urls.expires_at else {}
        pay, product = self.client.api_alipay_trade_page_pay, {}
        if self.config.pays_on_phone(urls.mobile):
            # quit_url: the phone cashier's way back to the order's pay.html, unpaid.
            pay_page = require_absolute_url("pay_page_url", urls.pay_page_url)
            quit_url = rebase(pay_page, self.config.return_base_url)
            pay = self.client.api_alipay_trade_wap_pay
            product = {"product_code": WAP_PAY_PRODUCT, "quit_url": quit_url}
        signed = pay(
            subject=payment.subject,
            out_trade_no=payment.out_trade_no,
            total_amount=format_amount(payment.total_amount),
            return_url=return_url,
            notify_url=notify_url,
            **product,
            **expiry,
        )
        gateway = self.config.gateway_url  # the browser may follow a path relative to the shop
        if self.config.checkout == "redirect":
            return Checkout(redirect_url=f"{gateway}?{signed}")
        return Checkout(
            form=CheckoutForm(f"{gateway}?charset=utf-8", tuple(parse_qsl(signed, keep_blank_values=True)))
        )

    def checkout_origins(self) -> tuple[str, ...]:
        """The gateway, and the return base the offline gateway's cashier form redirects to."""
        return origins(self.config.gateway_url, self.config.return_base_url or "")

    # notifications

    def parse_notification(self, params: Mapping[str, str]) -> Notification:
        """Alipay's verification (any configured Alipay key), then app_id and seller_id are ours."""
        return parse_notification(
            params, self.config.alipay_public_keys, self.config.app_id, self.config.seller_id
        )

    def acknowledge(self, accepted: bool) -> Acknowledgement:
        return Acknowledgement(ACCEPTED if accepted else REFUSED)

    # server-to-server requests

    def query(self, payment: Payment) -> Notification:
        return query_answer(
            self._call(self.client.api_alipay_trade_query, out_trade_no=payment.out_trade_no),
            payment.out_trade_no,
        )

    def close(self, payment: Payment) -> None:
        self._call(self.client.api_alipay_trade_close, out_trade_no=payment.out_trade_no)

    def refund(self, payment: Payment, amount: Decimal, request_no: str) -> Refund:
        amount = to_amount(amount)
        answer = self._call(
            self.client.api_alipay_trade_refund,
            refund_amount=format_amount(amount),
            out_trade_no=payment.out_trade_no,
            out_request_no=request_no,
        )
        return refund_answer(answer, amount, request_no)

    @property
    def _verifier(self) -> str:
        return (
            "ALIPAY_PUBLIC_CERT (the certificate it names)"
            if self.config.certificates
            else "ALIPAY_PUBLIC_KEY"
        )

    def daily_bill(self, day: date):
        """The trade bill (业务明细) of the Beijing day ``day``: see ``bills``."""
        return bills.daily_bill(self, day)

    def _call(self, request, **arguments) -> dict:
        """Send a signed request; the verified response, or ProviderError saying what went wrong."""
        try:
            answer = request(**arguments)
        except AliPayValidationError as error:
            raise ProviderError(
                str(error) or f"the gateway's response does not verify with {self._verifier}"
            ) from None
        except AliPayException as error:  # an unsigned error answer (e.g. an unknown app_id)
            code = getattr(error, "_AliPayException__code", "") or ""
            raise ProviderError(str(error), code=str(code), retryable=not code) from None
        except (OSError, ValueError) as error:  # unreachable, timed out, not JSON
            raise ProviderError(f"Alipay gateway call failed: {error}") from None
        if answer.get("code") != SUCCESS:
            error_type = TradeNotFound if answer.get("sub_code") == NOT_EXIST else ProviderError
            raise error_type(
                answer.get("sub_msg") or answer.get("msg") or "error",
                code=answer.get("code", ""),
                sub_code=answer.get("sub_code", ""),
                retryable=answer.get("code") == "20000" or answer.get("sub_code") in RETRYABLE,
            )
        return answer
