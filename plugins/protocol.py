"""Alipay's notification protocol, shared by the providers that speak it (Alipay, mockpay)."""

import json
from collections.abc import Iterable, Mapping

from ..core.errors import InvalidAmount, NotificationRejected
from ..core.model import Notification, TradeStatus
from ..core.money import to_amount
from . import signing

#: Alipay's trade_status values, in our words.
TRADE_STATUSES = {
    "TRADE_SUCCESS": TradeStatus.PAID,
    "TRADE_FINISHED": TradeStatus.PAID,
    "TRADE_CLOSED": TradeStatus.CLOSED,
    "WAIT_BUYER_PAY": TradeStatus.PENDING,
}
#: What the shop answers: ``success`` stops the provider's retries, anything else does not.
ACCEPTED, REFUSED = "success", "failure"
#: The format of notify_time, gmt_payment, timestamp... (Beijing time, for Alipay).
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
REQUIRED_FIELDS = ("notify_id", "app_id", "out_trade_no", "trade_no", "total_amount", "trade_status")


def parse_notification(params: Mapping[str, str], public_keys: Iterable, app_id: str,
                       seller_id: str | None = None) -> Notification:
    """Verify a notify as Alipay specifies, then check it is ours and parse it.

    The signature first (RSA2, ``sign`` and ``sign_type`` and empty values left out, any of
    ``public_keys``), then the fields: ``app_id`` ours, ``seller_id`` ours when given, the
    amount and the status readable. ``total_amount`` is what counts, never
    ``buyer_pay_amount`` (a discount lowers that). Matching the trade and the amount against
    our payment is the payment service's part.
    """
    if params.get("sign_type", "RSA2") != "RSA2":
        raise NotificationRejected("bad_signature", f"sign_type {params.get('sign_type')!r} is not RSA2")
    if not signing.verify(params, params.get("sign"), public_keys):
        raise NotificationRejected("bad_signature")
    missing = [name for name in REQUIRED_FIELDS if not params.get(name)]
    if missing:
        raise NotificationRejected("malformed", "missing " + ", ".join(missing))
    if params["app_id"] != app_id:
        raise NotificationRejected("wrong_app", params["app_id"])
    if seller_id and params.get("seller_id") != seller_id:
        raise NotificationRejected("wrong_seller", str(params.get("seller_id")))
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
