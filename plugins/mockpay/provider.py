"""The shop's side of mockpay: hand the shopper to the sandbox cashier, verify its notifications.

The protocol mirrors Alipay's page payment (same field names, RSA2 signatures, ``success``
acknowledgement) so that the notification path the shop exercises here is the one it uses
with Alipay.
"""

import json
from collections.abc import Mapping

from ...core.errors import InvalidAmount, NotificationRejected
from ...core.model import Notification, Payment
from ...core.money import format_amount, to_amount
from ...ports.providers import Acknowledgement, Checkout, CheckoutUrls, Provider
from .. import signing
from ..protocol import ACCEPTED, REFUSED, TRADE_STATUSES
from ..sitekit import require_absolute_url, with_query
from .common import MockpayConfig

REQUIRED_FIELDS = ("app_id", "out_trade_no", "trade_no", "total_amount", "trade_status", "notify_id")


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
        if not signing.verify(params, params.get("sign"), self.config.public_key):
            raise NotificationRejected("bad_signature")
        missing = [name for name in REQUIRED_FIELDS if not params.get(name)]
        if missing:
            raise NotificationRejected("malformed", "missing " + ", ".join(missing))
        if params["app_id"] != self.config.app_id:
            raise NotificationRejected("wrong_app", params["app_id"])
        try:
            total_amount = to_amount(params["total_amount"])
        except InvalidAmount as error:
            raise NotificationRejected("malformed", str(error)) from None
        status = TRADE_STATUSES.get(params["trade_status"])
        if status is None:
            raise NotificationRejected("unknown_status", params["trade_status"])
        return Notification(
            out_trade_no=params["out_trade_no"],
            total_amount=total_amount,
            status=status,
            trade_no=params["trade_no"],
            notify_id=params["notify_id"],
            raw=json.dumps(dict(params), ensure_ascii=False, sort_keys=True),
        )

    def acknowledge(self, accepted: bool) -> Acknowledgement:
        return Acknowledgement(ACCEPTED if accepted else REFUSED)
