"""The shop's side of mockpay: hand the shopper to the sandbox cashier, verify its notifications,
and query, refund and close trades through the sandbox's API.

The protocol mirrors Alipay's page payment (same field names, RSA2 signatures, ``success``
acknowledgement, Alipay's answer codes) so that the paths the shop exercises here are the ones
it uses with Alipay.
"""

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from decimal import Decimal
from urllib.parse import urlencode

from ...core.errors import ProviderError, TradeNotFound
from ...core.model import Notification, Payment
from ...core.money import format_amount, to_amount
from ...ports.providers import Acknowledgement, Checkout, CheckoutUrls, Provider, Refund
from .. import signing
from ..protocol import ACCEPTED, REFUSED, parse_notification, query_answer, refund_answer
from ..sitekit import FORM_TYPE, require_absolute_url, with_query
from .common import MockpayConfig

SUCCESS = "10000"
NOT_EXIST = "ACQ.TRADE_NOT_EXIST"


class MockpayProvider(Provider):
    """The sandbox provider; no outside service, no money."""

    name = "mockpay"
    title = "模拟支付 (mockpay)"

    def __init__(self, settings: Mapping):
        self.config = MockpayConfig.from_settings(settings)
        self.query_schedule = self.config.query_schedule
        # The sandbox is called directly, never through the environment's proxy.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def checkout(self, payment: Payment, urls: CheckoutUrls) -> Checkout:
        params = {
            "app_id": self.config.app_id,
            "out_trade_no": payment.out_trade_no,
            "total_amount": format_amount(payment.total_amount),
            "subject": payment.subject,
            "notify_url": require_absolute_url("notify_url", urls.notify_url),
            "return_url": require_absolute_url("return_url", urls.return_url),
        }
        return Checkout(redirect_url=with_query(self.config.cashier_url, params))

    def parse_notification(self, params: Mapping[str, str]) -> Notification:
        return parse_notification(params, [self.config.public_key], self.config.app_id)

    def acknowledge(self, accepted: bool) -> Acknowledgement:
        return Acknowledgement(ACCEPTED if accepted else REFUSED)

    # server-to-server requests

    def query(self, payment: Payment) -> Notification:
        return query_answer(self._call("mockpay.trade.query", payment), payment.out_trade_no)

    def close(self, payment: Payment) -> None:
        self._call("mockpay.trade.close", payment)

    def refund(self, payment: Payment, amount: Decimal, request_no: str) -> Refund:
        amount = to_amount(amount)
        answer = self._call("mockpay.trade.refund", payment, refund_amount=format_amount(amount),
                            out_request_no=request_no)
        return refund_answer(answer, amount, request_no)

    def _call(self, method: str, payment: Payment, **fields) -> dict:
        """Post to the sandbox's API; its verified answer, or ProviderError (TradeNotFound)."""
        body = urlencode({"method": method, "app_id": self.config.app_id, "out_trade_no": payment.out_trade_no,
                          **fields}).encode("utf-8")
        try:
            request = urllib.request.Request(self.config.server_api_url(), data=body,
                                             headers={"Content-Type": FORM_TYPE}, method="POST")
            with self._opener.open(request, timeout=self.config.timeout) as response:
                answer = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            error.close()
            raise ProviderError(f"mockpay sandbox answered HTTP {error.code} to {method}") from None
        except (OSError, ValueError, http.client.HTTPException) as error:  # unreachable, timed out, not JSON
            raise ProviderError(f"mockpay sandbox call {method} failed: {error}") from None
        if not isinstance(answer, dict) or not signing.verify(answer, answer.get("sign"), [self.config.public_key]):
            raise ProviderError(f"mockpay sandbox's answer to {method} does not verify with its public key")
        if answer.get("code") != SUCCESS:
            error_type = TradeNotFound if answer.get("sub_code") == NOT_EXIST else ProviderError
            raise error_type(answer.get("sub_msg") or "error", code=answer.get("code", ""),
                             sub_code=answer.get("sub_code", ""), retryable=False)  # the sandbox's answers are final
        if answer.get("out_trade_no") != payment.out_trade_no:
            raise ProviderError(f"asked about {payment.out_trade_no}, answered about {answer.get('out_trade_no')}")
        return answer

