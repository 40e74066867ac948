"""Entities of the payment domain and their statuses (their machines: ``core.states``)."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum, IntEnum


class PaymentStatus(IntEnum):
    """payment_info.payment_status: 0 unpaid, 1 paid, 2 closed, 3 partially refunded, 4 refunded."""

    UNPAID = 0
    PAID = 1
    CLOSED = 2
    PARTIALLY_REFUNDED = 3
    REFUNDED = 4


#: The statuses of a payment whose money the provider took (whatever was refunded since).
MONEY_TAKEN = frozenset({PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED})
#: The statuses from which a payment may be refunded (some of its money is still with us).
REFUNDABLE = frozenset({PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED})


class OrderStatus(IntEnum):
    """oms_order.status as the order service defines it."""

    AWAITING_PAYMENT = 0
    AWAITING_SHIPMENT = 1
    SHIPPED = 2
    DONE = 3
    CLOSED = 4
    INVALID = 5


PAID_ORDER_STATUSES = frozenset({OrderStatus.AWAITING_SHIPMENT, OrderStatus.SHIPPED, OrderStatus.DONE})
#: Orders that will never be paid: money arriving for them is owed back.
DEAD_ORDER_STATUSES = frozenset({OrderStatus.CLOSED, OrderStatus.INVALID})


class TradeStatus(Enum):
    """What a provider says about a trade, in our words."""

    PAID = "paid"
    CLOSED = "closed"
    PENDING = "pending"


class RefundStatus(IntEnum):
    """payment_refund.status: recorded before the provider is asked, settled by its answer.

    PENDING: asked (or about to be), answer not known: a retry with the same out_request_no
    completes it. SUCCEEDED: the provider refunded. FAILED: the provider refused; the amount
    is free again, and a retry with the same out_request_no asks once more.
    """

    PENDING = 0
    SUCCEEDED = 1
    FAILED = 2


class RefundReason:
    """Why a refund was made (payment_refund.reason, payment_info.refund_reason)."""

    OPERATOR = "operator"
    #: The payment succeeded for an order already closed (expired, cancelled).
    PAID_AFTER_CLOSE = "paid_after_close"
    #: Another payment of the order had paid it already.
    PAID_TWICE = "paid_twice"
    AUTOMATIC = frozenset({PAID_AFTER_CLOSE, PAID_TWICE})
    #: Made at the provider, not by the shop: found in the provider's bill and recorded from it.
    OUTSIDE = "outside"


#: How people read the statuses of payments, orders and refunds (the names the shop shows).
CHINESE_NAMES = {
    PaymentStatus: {
        PaymentStatus.UNPAID: "未支付",
        PaymentStatus.PAID: "已支付",
        PaymentStatus.CLOSED: "已关闭",
        PaymentStatus.PARTIALLY_REFUNDED: "部分退款",
        PaymentStatus.REFUNDED: "已退款",
    },
    OrderStatus: {
        OrderStatus.AWAITING_PAYMENT: "待付款",
        OrderStatus.AWAITING_SHIPMENT: "待发货",
        OrderStatus.SHIPPED: "已发货",
        OrderStatus.DONE: "已完成",
        OrderStatus.CLOSED: "已关闭",
        OrderStatus.INVALID: "无效订单",
    },
    RefundStatus: {
        RefundStatus.PENDING: "退款中",
        RefundStatus.SUCCEEDED: "退款成功",
        RefundStatus.FAILED: "退款失败",
    },
}


def label(status: IntEnum) -> str:
    """``refunded (已退款)``: a status as messages and the CLI show it."""
    return f"{status.name.lower().replace('_', ' ')} ({CHINESE_NAMES[type(status)][status]})"


class LockStatus(IntEnum):
    """wms stock lock: held for an order, then deducted on payment or released."""

    LOCKED = 0
    DEDUCTED = 1
    RELEASED = 2


@dataclass
class Payment:
    """One row of payment_info: one per order and provider."""

    order_sn: str
    payment_type: str
    total_amount: Decimal
    subject: str
    create_time: datetime
    out_trade_no: str = ""
    id: int | None = None
    trade_no: str | None = None
    payment_status: PaymentStatus = PaymentStatus.UNPAID
    callback_time: datetime | None = None
    callback_content: str | None = None
    #: Refunds asked for and not refused (pending or done): never more than total_amount.
    refund_reserved: Decimal = Decimal("0.00")
    #: Refunds the provider confirmed; the status follows it (partially refunded, refunded).
    refunded: Decimal = Decimal("0.00")
    #: Set when the money must go back automatically (``RefundReason.AUTOMATIC``).
    refund_reason: str | None = None
    #: What an operator must look at, in words; None when nothing.
    flag: str | None = None
    #: Reconciliation: queries made so far, and when the next one is due (None: no more).
    query_attempts: int = 0
    next_query_time: datetime | None = None
    #: The seed's tinyint payment_type (the provider's ``payment_code``: 1 Alipay, 2 WeChat Pay),
    #: kept beside the name; None for a provider without one (mockpay).
    payment_type_code: int | None = None

    def __post_init__(self):
        self.out_trade_no = self.out_trade_no or self.order_sn

    def can_reserve(self, amount: Decimal) -> bool:
        """Whether a refund of ``amount`` may be reserved: the payment holds money (paid or
        partially refunded) and refunds reserved stay within what was paid. The stores ask
        this of the payment as they hold it, so two reservations racing cannot both pass."""
        return self.payment_status in REFUNDABLE and self.refund_reserved + amount <= self.total_amount

    @property
    def refundable(self) -> Decimal:
        """What may still be refunded: the amount paid less refunds pending or done."""
        if self.payment_status not in REFUNDABLE:
            return Decimal("0.00")
        return self.total_amount - self.refund_reserved

    @property
    def owed_back(self) -> bool:
        """Money the shop must return by itself, not returned yet."""
        return self.refund_reason in RefundReason.AUTOMATIC and self.payment_status in REFUNDABLE


@dataclass
class OrderItem:
    sku_id: int
    sku_name: str
    quantity: int
    price: Decimal


@dataclass
class Order:
    """The part of oms_order this service reads."""

    order_sn: str
    member_id: int
    status: OrderStatus
    pay_amount: Decimal
    integration: int = 0
    growth: int = 0
    items: list[OrderItem] = field(default_factory=list)
    id: int | None = None
    #: When the order was placed (its payment deadline counts from here).
    create_time: datetime | None = None

    @property
    def subject(self) -> str:
        """The trade's subject, from the goods' names (the seed used a constant)."""
        names = "、".join(item.sku_name for item in self.items) or "谷粒商城订单"
        return f"谷粒商城-{names}"[:100]


@dataclass
class PaymentRefund:
    """One refund of a payment (payment_refund); ``out_request_no`` is unique per payment.

    ``answer`` is the provider's answer (or refusal), as text, for operators.
    """

    payment_id: int
    order_sn: str
    out_request_no: str
    amount: Decimal
    reason: str
    create_time: datetime
    update_time: datetime
    status: RefundStatus = RefundStatus.PENDING
    answer: str = ""
    id: int | None = None


class PointsKind:
    """ums_points_ledger.kind: each happens at most once per order."""

    AWARD = "award"
    REVOKE = "revoke"


@dataclass(frozen=True)
class LedgerEntry:
    """A points change of an order, as the ledger recorded it."""

    order_sn: str
    kind: str
    member_id: int
    integration: int
    growth: int


@dataclass(frozen=True)
class StockLock:
    id: int
    order_sn: str
    sku_id: int
    quantity: int
    status: LockStatus


@dataclass(frozen=True)
class RefundNotice:
    """A provider's word about one of our refunds (WeChat Pay's REFUND.* notifications, Alipay's
    trade notifications that carry ``refund_fee``)."""

    request_no: str
    #: This refund's amount; None when the provider does not say it (Alipay says the total).
    amount: Decimal | None
    #: True: refunded; False: the provider gave up on it (abnormal, closed).
    succeeded: bool
    #: All the provider has refunded on the trade so far, when it says (Alipay's ``refund_fee``).
    refunded_total: Decimal | None = None


@dataclass(frozen=True)
class Notification:
    """A provider's verified, parsed asynchronous notification; ``refund`` set: about a refund of
    the trade (``status`` is then the trade's, unchanged by it)."""

    out_trade_no: str
    total_amount: Decimal
    status: TradeStatus
    trade_no: str | None = None
    notify_id: str | None = None
    raw: str = ""
    refund: RefundNotice | None = None
    #: When the provider says the buyer paid (a bill's line), on the shop's clock: the payment's
    #: ``callback_time``, so that it counts in the bill of the day it was paid; None: now.
    paid_at: datetime | None = None


@dataclass
class NotificationRecord:
    """One notification as received, kept whatever became of it (the notify log).

    ``raw`` is the body as posted, so an operator can read it and replay it; ``verified``
    says whether its signature held; ``outcome`` is what the payment service made of it
    ("paid", "duplicate", ... or the rejection reason) and ``accepted`` whether the provider
    was told ``success``.
    """

    provider: str
    received_at: datetime
    raw: str
    verified: bool
    accepted: bool
    outcome: str
    notify_id: str | None = None
    out_trade_no: str | None = None
    detail: str = ""
    replay_of: int | None = None
    #: How we heard: "notify" (the provider called us), "query" (we asked: reconciliation),
    #: "close" (the provider's answer when we closed the trade).
    source: str = "notify"
    id: int | None = None
    #: The request headers the provider signs (its ``notification_headers``: WeChat Pay's
    #: ``Wechatpay-*``) as received, a JSON object, kept so that a replay verifies them again;
    #: None for a provider that signs the body alone.
    headers: str | None = None


def fully_refunded(payments) -> bool:
    """Whether every payment that paid its order (money taken, not owed back) is refunded."""
    paying = [p for p in payments if p.payment_status in MONEY_TAKEN and p.refund_reason is None]
    return bool(paying) and all(p.payment_status == PaymentStatus.REFUNDED for p in paying)
