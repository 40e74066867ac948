"""Alipay's protocol, shared by the providers that speak it (Alipay, mockpay): notifications,
and the answers to queries and refunds."""

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal

from ..core.errors import InvalidAmount, NotificationRejected, ProviderError
from ..core.model import Notification, RefundNotice, TradeStatus
from ..core.money import to_amount
from ..ports.provider import Refund
from . import rsa2

#: Alipay's trade_status values (the sandboxes keep their trades in them too).
WAIT_BUYER_PAY, TRADE_SUCCESS, TRADE_FINISHED, TRADE_CLOSED = (
    "WAIT_BUYER_PAY",
    "TRADE_SUCCESS",
    "TRADE_FINISHED",
    "TRADE_CLOSED",
)
#: Alipay's trade_status values, in our words.
TRADE_STATUSES = {
    TRADE_SUCCESS: TradeStatus.PAID,
    TRADE_FINISHED: TradeStatus.PAID,
    TRADE_CLOSED: TradeStatus.CLOSED,
    WAIT_BUYER_PAY: TradeStatus.PENDING,
}
#: The sub_code of the answer about a trade the provider does not know.
NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
#: What the shop answers: ``success`` stops the provider's retries, anything else does not.
ACCEPTED, REFUSED = "success", "failure"
#: The format of notify_time, gmt_payment, timestamp... (Beijing time, for Alipay).
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
REQUIRED_FIELDS = ("notify_id", "app_id", "out_trade_no", "trade_no", "total_amount", "trade_status")


def parse_notification(
    params: Mapping[str, str], public_keys: Iterable, app_id: str, seller_id: str | None = None
) -> Notification:
    """Verify a notify as Alipay specifies, then check it is ours and parse it.

    The signature first (RSA2, ``sign`` and ``sign_type`` and empty values left out, any of
    ``public_keys``), then the fields: ``app_id`` ours, ``seller_id`` ours when given, the
    amount and the status readable. ``total_amount`` is what counts, never
    ``buyer_pay_amount`` (a discount lowers that). Matching the trade and the amount against
    our payment is the payment service's part. A notify that a refund caused is about that
    refund (``refund_notice``), whatever its trade_status.
    """
    if params.get("sign_type", "RSA2") != "RSA2":
        raise NotificationRejected("bad_signature", f"sign_type {params.get('sign_type')!r} is not RSA2")
    if not rsa2.verify(params, params.get("sign"), public_keys):
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
        refund=refund_notice(params),
    )


def refund_notice(params: Mapping[str, str]) -> RefundNotice | None:
    """The refund a notify is about, or None for one about paying or closing.

    Alipay notifies each refund to the pay request's notify_url: ``refund_fee`` (all refunded on
    the trade so far, not this refund's amount), ``gmt_refund``, and ``out_biz_no``, the
    refund's ``out_request_no``; trade_status TRADE_SUCCESS after a partial refund, TRADE_CLOSED
    after the last. The refund's time marks such a notify (a close at time_expire has none). A
    notify only says a refund was made, never that one failed.
    """
    if not params.get("gmt_refund"):
        return None
    if not params.get("out_biz_no"):
        raise NotificationRejected("malformed", "gmt_refund without out_biz_no (the refund's out_request_no)")
    try:
        refunded_total = to_amount(params.get("refund_fee"))
    except InvalidAmount as error:
        raise NotificationRejected("malformed", f"refund_fee: {error}") from None
    return RefundNotice(params["out_biz_no"], None, succeeded=True, refunded_total=refunded_total)


def query_answer(answer: Mapping, out_trade_no: str) -> Notification:
    """A trade query's verified answer (``out_trade_no``, ``trade_no``, ``trade_status``,
    ``total_amount``) as the notification it stands for; ProviderError if it is not one."""
    if answer.get("out_trade_no") != out_trade_no:
        raise ProviderError(f"asked about {out_trade_no}, answered about {answer.get('out_trade_no')}")
    status = TRADE_STATUSES.get(answer.get("trade_status"))
    if status is None:
        raise ProviderError(f"unknown trade_status {answer.get('trade_status')!r}")
    return Notification(
        out_trade_no=out_trade_no,
        total_amount=answer_amount(answer, "total_amount"),
        status=status,
        trade_no=answer.get("trade_no"),
        raw=json.dumps(answer, ensure_ascii=False, sort_keys=True),
    )


def refund_answer(answer: Mapping, amount: Decimal, request_no: str) -> Refund:
    """A refund's verified answer: ``refund_fee`` is all refunded so far, ``fund_change`` "N"
    for a repeat of a refund already made."""
    return Refund(
        request_no=request_no,
        refund_amount=amount,
        refunded_total=answer_amount(answer, "refund_fee"),
        fund_change=answer.get("fund_change") == "Y",
        trade_no=answer.get("trade_no"),
    )


def answer_amount(answer: Mapping, name: str) -> Decimal:
    try:
        return to_amount(answer.get(name))
    except InvalidAmount as error:
        raise ProviderError(f"{name}: {error}") from None
