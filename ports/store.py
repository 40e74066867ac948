"""The store ports: what the services read and change, grouped in one unit of work.

Every change that must happen at most once is a compare-and-set (``move``, ``claim``,
``add_once``) that reports whether *this* call made it, so two workers racing on the same
order cannot both apply it.
"""

import abc
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from ..core.events import Event
from ..core.model import (
    LockStatus,
    NotificationRecord,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    StockLock,
)


class PaymentStore(abc.ABC):
    @abc.abstractmethod
    def find(self, order_sn: str, payment_type: str) -> Payment | None:
        """The payment of this order with this provider, if any."""

    @abc.abstractmethod
    def by_trade(self, payment_type: str, out_trade_no: str) -> Payment | None:
        """The payment a provider's notification refers to."""

    @abc.abstractmethod
    def for_order(self, order_sn: str) -> list[Payment]:
        """Every payment of an order, oldest first."""

    @abc.abstractmethod
    def add_once(self, payment: Payment) -> Payment:
        """Store ``payment`` unless one exists for its order and provider; return the stored one.

        Must stay correct when two transactions race: exactly one row survives.
        """

    @abc.abstractmethod
    def move(
        self,
        payment_id: int,
        from_status: PaymentStatus,
        to_status: PaymentStatus,
        *,
        trade_no: str | None = None,
        callback_time: datetime | None = None,
        callback_content: str | None = None,
    ) -> bool:
        """Change the status only if it is still ``from_status``; True if this call did."""


class OrderStore(abc.ABC):
    @abc.abstractmethod
    def get(self, order_sn: str) -> Order | None:
        """The order with its items, or None."""

    @abc.abstractmethod
    def move(self, order_sn: str, from_status: OrderStatus, to_status: OrderStatus) -> bool:
        """Change the order's status only if it is still ``from_status``."""


class StockStore(abc.ABC):
    @abc.abstractmethod
    def locks_for(self, order_sn: str) -> list[StockLock]:
        """The stock locks an order holds, whatever their status."""

    @abc.abstractmethod
    def move_lock(self, lock_id: int, from_status: LockStatus, to_status: LockStatus) -> bool:
        """Change a lock's status only if it is still ``from_status``."""

    @abc.abstractmethod
    def deduct(self, sku_id: int, quantity: int) -> None:
        """Ship locked units: stock -n, stock_locked -n, sales +n."""

    @abc.abstractmethod
    def release(self, sku_id: int, quantity: int) -> None:
        """Free locked units of an order that will not ship: stock_locked -n."""


class PointsStore(abc.ABC):
    @abc.abstractmethod
    def claim(self, order_sn: str, member_id: int, integration: int, growth: int) -> bool:
        """Record the award for this order in the ledger; False if it was already recorded."""

    @abc.abstractmethod
    def credit(self, member_id: int, integration: int, growth: int) -> None:
        """Add points to the member's balance."""


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    event: Event
    created_at: datetime
    sent_at: datetime | None = None


class Outbox(abc.ABC):
    @abc.abstractmethod
    def add(self, event: Event) -> int:
        """Keep ``event`` to be sent once the surrounding unit of work commits; return its id."""

    @abc.abstractmethod
    def unsent(self, limit: int, ids: Iterable[int] | None = None) -> list[OutboxMessage]:
        """The oldest events not yet accepted by the broker (among ``ids``, if given)."""

    @abc.abstractmethod
    def mark_sent(self, ids: Iterable[int], at: datetime) -> None:
        """Record that the broker accepted these events (again: the latest time counts)."""

    @abc.abstractmethod
    def unsettled(self, sent_before: datetime, limit: int) -> list[OutboxMessage]:
        """The oldest events sent before ``sent_before`` and not yet settled."""

    @abc.abstractmethod
    def settle(self, ids: Iterable[int], at: datetime) -> None:
        """Record that these events' steps have all had their outcome: never send them again."""


#: Longer trace details are cut to this many characters.
DETAIL_LENGTH = 500


@dataclass(frozen=True)
class TraceEntry:
    order_sn: str
    step: str
    outcome: str  # core.fulfilment: DONE, SKIPPED, FAILED, DEAD
    detail: str
    at: datetime


class FulfilmentTrace(abc.ABC):
    """What each fulfilment step of an order did and when, for operators and redelivery."""

    @abc.abstractmethod
    def record(self, order_sn: str, step: str, outcome: str, detail: str = "") -> None:
        """Add an entry (``detail`` cut to DETAIL_LENGTH), timed by the store's clock."""

    @abc.abstractmethod
    def for_order(self, order_sn: str) -> list[TraceEntry]:
        """The order's entries, oldest first."""


class NotificationLog(abc.ABC):
    """Every provider notification received, accepted or not (see ``NotificationRecord``)."""

    @abc.abstractmethod
    def add(self, record: NotificationRecord) -> NotificationRecord:
        """Keep ``record``; return it with its id."""

    @abc.abstractmethod
    def get(self, record_id: int) -> NotificationRecord | None:
        """The record with this id, or None."""

    @abc.abstractmethod
    def accepted(self, provider: str, notify_id: str) -> NotificationRecord | None:
        """The first record of this provider's ``notify_id`` that was answered ``success``."""

    @abc.abstractmethod
    def recent(self, limit: int, provider: str | None = None) -> list[NotificationRecord]:
        """The latest records, newest first, of one provider or all."""


class UnitOfWork(abc.ABC):
    """One transaction over every store; rolls back unless ``commit()`` was called."""

    payments: PaymentStore
    orders: OrderStore
    stock: StockStore
    points: PointsStore
    outbox: Outbox
    notifications: NotificationLog
    trace: FulfilmentTrace

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.rollback()

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def rollback(self) -> None:
        """Discard what was not committed; harmless after a commit."""
