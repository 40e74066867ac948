"""Entities of the payment domain and their status machines."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum, IntEnum


class PaymentStatus(IntEnum):
    """payment_info.payment_status: 0 unpaid, 1 paid, 2 closed (refunds come later)."""

    UNPAID = 0
    PAID = 1
    CLOSED = 2


#: The moves a payment may make; anything else is refused by ``Payment.can_move``.
PAYMENT_TRANSITIONS = {
    PaymentStatus.UNPAID: {PaymentStatus.PAID, PaymentStatus.CLOSED},
    PaymentStatus.PAID: set(),
    PaymentStatus.CLOSED: set(),
}


class OrderStatus(IntEnum):
    """oms_order.status as the order service defines it."""

    AWAITING_PAYMENT = 0
    AWAITING_SHIPMENT = 1
    SHIPPED = 2
    DONE = 3
    CLOSED = 4
    INVALID = 5


PAID_ORDER_STATUSES = frozenset(
    {OrderStatus.AWAITING_SHIPMENT, OrderStatus.SHIPPED, OrderStatus.DONE}
)


class TradeStatus(Enum):
    """What a provider says about a trade, in our words."""

    PAID = "paid"
    CLOSED = "closed"
    PENDING = "pending"


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

    def __post_init__(self):
        self.out_trade_no = self.out_trade_no or self.order_sn

    def can_move(self, to: PaymentStatus) -> bool:
        return to in PAYMENT_TRANSITIONS[self.payment_status]


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

    @property
    def subject(self) -> str:
        """The trade's subject, from the goods' names (the seed used a constant)."""
        names = "、".join(item.sku_name for item in self.items) or "谷粒商城订单"
        return f"谷粒商城-{names}"[:100]


@dataclass(frozen=True)
class StockLock:
    id: int
    order_sn: str
    sku_id: int
    quantity: int
    status: LockStatus


@dataclass(frozen=True)
class Notification:
    """A provider's verified, parsed asynchronous notification."""

    out_trade_no: str
    total_amount: Decimal
    status: TradeStatus
    trade_no: str | None = None
    notify_id: str | None = None
    raw: str = ""


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
    id: int | None = None
