"""The flash sale's (秒杀) values: what the ``seckill`` service and its ports exchange.

They live in core, not in ``seckill/``, because ``ports/seckill.py`` speaks of them and
ports may import only core.
"""

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum, IntEnum
from typing import ClassVar

from .errors import DomainError
from .model import Order
from .money import to_amount


class InvalidSale(DomainError):
    """A sale an operator may not create: say what to change."""


@dataclass(frozen=True)
class Sale:
    """Units of one SKU sold at one price between ``start`` (inclusive) and ``end`` (exclusive)."""

    sku_id: int
    title: str
    price: Decimal
    units: int
    start: datetime
    end: datetime
    id: int | None = None
    #: The gate generation the database recorded when it last loaded the sale into the gate
    #: (0: never loaded); a gate holding the sale at another one, or not at all, lost it.
    generation: int = 0
    #: Units one member may hold: the reservation records one order number per member.
    limit_per_member: ClassVar[int] = 1

    def __post_init__(self):
        object.__setattr__(self, "price", to_amount(self.price))
        if not self.title.strip():
            raise InvalidSale("a sale needs a title")
        if self.units < 1:
            raise InvalidSale(f"units must be a whole number of at least 1, not {self.units!r}")
        if not self.start < self.end:
            raise InvalidSale(f"the sale must end after it starts ({self.start} .. {self.end})")


class Outcome(Enum):
    """What a click got; the values are what the reservation script answers."""

    RESERVED = "reserved"
    SOLD_OUT = "sold_out"
    ALREADY_BOUGHT = "already_bought"
    NOT_STARTED = "not_started"
    ENDED = "ended"
    NOT_ON_SALE = "not_on_sale"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"  # the gate did not answer in time: nothing was reserved


@dataclass(frozen=True)
class Click:
    """A click's answer: ``order_sn`` is the new order's number when reserved, the member's
    earlier one when already bought, else None; ``retry_after``: seconds until a
    rate-limited click may come again."""

    outcome: Outcome
    order_sn: str | None = None
    retry_after: int | None = None

    @classmethod
    def rate_limited(cls, wait: float) -> "Click":
        """Turned away by a rate limit whose window ends in ``wait`` seconds."""
        return cls(Outcome.RATE_LIMITED, retry_after=retry_after(wait))

    @classmethod
    def unavailable(cls) -> "Click":
        """The gate did not answer in time, and took nothing: try again in a second."""
        return cls(Outcome.UNAVAILABLE, retry_after=1)


def retry_after(wait: float) -> int:
    """What to tell a client turned away for ``wait`` seconds: whole seconds, at least one."""
    return max(1, math.ceil(wait))


@dataclass(frozen=True)
class RateLimit:
    """At most ``amount`` clicks in ``seconds``, counted from the first click of a window."""

    amount: int
    seconds: int


@dataclass(frozen=True)
class ClickLimits:
    """The limits each click counts against, per member and per client address, on one
    sale: the gate counts them in the same atomic step as the reservation. A limit
    breached turns the click away (``RATE_LIMITED``) before it can take a unit."""

    member: tuple[RateLimit, ...] = ()
    ip: tuple[RateLimit, ...] = ()


#: No limit at all: for gates in tests and tools.
UNLIMITED = ClickLimits()


@dataclass(frozen=True)
class Reservation:
    """A unit taken for a member, handed to the order creator under a number made beforehand.

    ``receipt`` is the gate's handle to acknowledge it; ``deliveries`` counts how often it
    was handed out, so a reservation whose order cannot be made is not retried forever.
    """

    order_sn: str
    member_id: int
    sku_id: int
    sale_id: int
    reserved_at: datetime
    receipt: str = ""
    deliveries: int = 1
    #: The gate generation it was taken from: the database makes no order of an older one.
    generation: int = 0


class Creation(Enum):
    """What the store made of a reservation."""

    CREATED = "created"  # its order now exists
    EXISTS = "exists"  # settled before: its order exists, or it was abandoned
    CONFLICT = "conflict"  # the member holds another order of this sale: none is made
    REFUSED = "refused"  # the database has no unit for it (all held, or its gate generation is lost)


class ReservationState(Enum):
    """What a shopper is told of their reservation (``/seckill/orders/<order_sn>``)."""

    PENDING = "pending"  # its order is being made
    CREATED = "created"
    CLOSED = "closed"
    ABANDONED = "abandoned"  # no order will be made: the unit was not secured
    LOST = "lost"  # nothing holds it any more (lost with the gate's data): no order will be made


class SeckillOrderStatus(IntEnum):
    """sms_seckill_order.status: what became of a reservation once the order creator saw it."""

    CREATED = 0  # its order exists and holds the unit (awaiting payment, or paid)
    CLOSED = 1  # its order was closed unpaid: the unit goes back
    ABANDONED = 2  # no order will be made: the unit goes back


@dataclass(frozen=True)
class SeckillOrderRecord:
    """What became of a reservation the order creator saw (a row of sms_seckill_order)."""

    reservation: Reservation
    status: SeckillOrderStatus
    expires_at: datetime | None  # None when abandoned: no order to expire


@dataclass(frozen=True)
class SeckillOrder:
    """The order to make for a reservation, and when it expires unpaid."""

    reservation: Reservation
    order: Order
    expires_at: datetime
