"""The shop's side of mockpay: open the trade at the sandbox and hand the shopper to its cashier,
verify its notifications, and query, refund and close trades through the sandbox's API.

The protocol mirrors Alipay's (same field names, RSA2 signatures both ways, ``success``
acknowledgement, Alipay's answer codes) so that the paths the shop exercises here are the ones
it uses with Alipay. Every request is signed with the merchant key, which only the shop holds.

When the sandbox is mounted in this shop (``use_mounted_sandbox``) every call goes to it in
process: checkout opens the trade (``mockpay.trade.create``, with the notify and return URLs)
while serving the shopper's request, and query, refund and close, in whichever process of the
shop makes them (the web server, the in-process worker, the CLI), reach the same trades, which
the sandbox keeps in the instance folder. So the embedded shop needs no ``PUBLIC_URL``, no
second request to its own server and no trust in the request's Host. A sandbox elsewhere (an
absolute ``MOCKPAY_API_URL``) is called over HTTP.
"""

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlencode, urlsplit

from ...core.errors import ProviderError, TradeNotFound
from ...core.model import Notification, Payment
from ...core.money import format_amount, to_amount
from ...ports.provider import Acknowledgement, Checkout, CheckoutUrls, Provider, Refund, origins
from .. import rsa2
from ..alipay_protocol import ACCEPTED, REFUSED, TIME_FORMAT, parse_notification, query_answer, refund_answer
from ..urls import FORM_TYPE, require_absolute_url, with_query
from .config import MockpayConfig
from .sandbox import CLOSE, CREATE, QUERY, REFUND, SandboxApp

SUCCESS = "10000"
NOT_EXIST = "ACQ.TRADE_NOT_EXIST"


class MockpayProvider(Provider):
    """The sandbox provider; no outside service, no money."""

    name = "mockpay"
    title = "模拟支付 (mockpay)"
    sandbox = True

    def __init__(self, settings: Mapping):
        self.config = MockpayConfig.from_settings(settings)
        self.query_schedule = self.config.query_schedule
        # The sandbox is called directly, never through the environment's proxy.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._mounted: SandboxApp | None = None

    def use_mounted_sandbox(self, sandbox: SandboxApp) -> None:
        """The sandbox the shop mounts beside this provider: every call goes there in process.
        Only the shop's own (a relative ``MOCKPAY_API_URL``) counts."""
        if not urlsplit(self.config.api_url).netloc:
            self._mounted = sandbox

    def checkout(self, payment: Payment, urls: CheckoutUrls) -> Checkout:
        """Open the trade at the sandbox with where to notify and return, and until when it may be
        paid; the shopper then goes to the cashier with the trade's reference only."""
        fields = {
            "total_amount": format_amount(payment.total_amount),
            "subject": payment.subject,
            "notify_url": require_absolute_url("notify_url", urls.notify_url),
            "return_url": require_absolute_url("return_url", urls.return_url),
        }
        if urls.expires_at:
            fields["time_expire"] = urls.expires_at.strftime(TIME_FORMAT)  # the sandbox's clock is ours
        self._call(CREATE, payment, **fields)
        return Checkout(
            redirect_url=with_query(self.config.cashier_url, {"out_trade_no": payment.out_trade_no})
        )

    def checkout_origins(self) -> tuple[str, ...]:
        return origins(self.config.cashier_url)

    def parse_notification(self, params: Mapping[str, str]) -> Notification:
        return parse_notification(params, [self.config.public_key], self.config.app_id)

    def acknowledge(self, accepted: bool) -> Acknowledgement:
        return Acknowledgement(ACCEPTED if accepted else REFUSED)

    # server-to-server requests

    def query(self, payment: Payment) -> Notification:
        return query_answer(self._call(QUERY, payment), payment.out_trade_no)

    def close(self, payment: Payment) -> None:
        self._call(CLOSE, payment)

    def refund(self, payment: Payment, amount: Decimal, request_no: str) -> Refund:
        amount = to_amount(amount)
        answer = self._call(REFUND, payment, refund_amount=format_amount(amount), out_request_no=request_no)
        return refund_answer(answer, amount, request_no)

    def _call(self, method: str, payment: Payment, **fields) -> dict:
        """Send a signed request to the sandbox's API; its verified answer, or ProviderError
        (TradeNotFound)."""
        params = {
            "method": method,
            "app_id": self.config.app_id,
            "out_trade_no": payment.out_trade_no,
            "timestamp": datetime.now().strftime(TIME_FORMAT),
            "sign_type": "RSA2",
            **fields,
        }
        params["sign"] = rsa2.sign(params, self.config.merchant_private_key, rsa2.REQUEST_UNSIGNED_FIELDS)
        answer = self._mounted.answer(params) if self._mounted is not None else self._post(method, params)
        if not isinstance(answer, dict) or not rsa2.verify(
            answer, answer.get("sign"), [self.config.public_key]
        ):
            raise ProviderError(f"mockpay sandbox's answer to {method} does not verify with its public key")
        if answer.get("code") != SUCCESS:
            error_type = TradeNotFound if answer.get("sub_code") == NOT_EXIST else ProviderError
            raise error_type(
                answer.get("sub_msg") or "error",
                code=answer.get("code", ""),
                sub_code=answer.get("sub_code", ""),
                retryable=False,
            )  # the sandbox's answers are final
        if answer.get("out_trade_no") != payment.out_trade_no:
            raise ProviderError(
                f"asked about {payment.out_trade_no}, answered about {answer.get('out_trade_no')}"
            )
        return answer

    def _post(self, method: str, params: Mapping[str, str]):
        """The sandbox's answer over HTTP, parsed; ProviderError when there is none."""
        try:
            request = urllib.request.Request(
                self.config.server_api_url(),
                data=urlencode(params).encode("utf-8"),
                headers={"Content-Type": FORM_TYPE},
                method="POST",
            )
            with self._opener.open(request, timeout=self.config.timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            error.close()
            raise ProviderError(f"mockpay sandbox answered HTTP {error.code} to {method}") from None
        except (OSError, ValueError, http.client.HTTPException) as error:  # unreachable, timed out, not JSON
            raise ProviderError(f"mockpay sandbox call {method} failed: {error}") from None
