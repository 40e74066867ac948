"""The shop's side of mockpay: hand the shopper to the sandbox cashier, verify its notifications.

The protocol mirrors Alipay's page payment (same field names, RSA2 signatures, ``success``
acknowledgement) so that the notification path the shop exercises here is the one it uses
with Alipay.
"""

from collections.abc import Mapping

from ...core.model import Notification, Payment
from ...core.money import format_amount
from ...ports.providers import Acknowledgement, Checkout, CheckoutUrls, Provider
from ..protocol import ACCEPTED, REFUSED, parse_notification
from ..sitekit import require_absolute_url, with_query
from .common import MockpayConfig


class MockpayProvider(Provider):
    """The sandbox provider; no outside service, no money."""

    name = "mockpay"
    title = "模拟支付 (mockpay)"

    def __init__(self, settings: Mapping):
        self.config = MockpayConfig.from_settings(settings)

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
