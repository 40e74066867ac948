"""The store ports: what the services read and change, grouped in one unit of work.

Every change that must happen at most once is a compare-and-set (``move``, ``claim``,
``add_once``) that reports whether *this* call made it, so two workers racing on the same
order cannot both apply it.

Status moves: the public ``move`` asks the thing's machine (``core.states``) first and raises
``IllegalMove`` for a move not in its table; only then does it call the store's ``_move``,
which is nothing but the compare-and-set.
"""

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from ..core import states
from ..core.bills import BillRun
from ..core.events import Event
from ..core.model import (
    LedgerEntry,
    LockStatus,
    NotificationRecord,
    Order,
    OrderStatus,
    Payment,
    PaymentRefund,
    PaymentStatus,
    PointsKind,
    RefundStatus,
    StockLock,
)
from ..core.outbox import CommittedEvent
from ..core.truncation import fit


class PaymentStore(abc.ABC):
    @abc.abstractmethod
    def get(self, payment_id: int) -> Payment | None:
        """The payment with this id, or None."""

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
        """Change the status only if it is still ``from_status``; True if this call did.

        The other fields change only when given (not None); ``callback_content`` is fitted to
        TEXT_BYTES. ``IllegalMove`` for a move that ``states.PAYMENTS`` does not hold.
        """
        states.PAYMENTS.check(from_status, to_status, f"#{payment_id}")
        return self._move(
            payment_id, from_status, to_status, _given(trade_no, callback_time, callback_content)
        )

    def moved(
        self,
        payment: Payment,
        to_status: PaymentStatus,
        *,
        trade_no: str | None = None,
        callback_time: datetime | None = None,
        callback_content: str | None = None,
    ) -> Payment | None:
        """``move`` the payment as read: the payment as the move left it (no need to read it
        back), or None if another transaction moved it first."""
        given = _given(trade_no, callback_time, callback_content)
        states.PAYMENTS.check(payment.payment_status, to_status, f"#{payment.id}")
        if not self._move(payment.id, payment.payment_status, to_status, given):
            return None
        return replace(payment, payment_status=to_status, **given)

    @abc.abstractmethod
    def _move(
        self, payment_id: int, from_status: PaymentStatus, to_status: PaymentStatus, given: dict
    ) -> bool:
        """``move``'s compare-and-set, the move already checked; ``given``: the other columns to set."""

    @abc.abstractmethod
    def settle_order(self, order_sn: str, payment_id: int) -> bool:
        """Record this payment as the one that paid the order, unless one already is; True
        if this call did. Two payments racing for one order: exactly one wins."""

    @abc.abstractmethod
    def settled_by(self, order_sn: str) -> int | None:
        """The id of the payment that paid the order, if any."""

    @abc.abstractmethod
    def mark_owed(self, payment_id: int, reason: str) -> bool:
        """Set ``refund_reason`` unless it is set already; True if this call did."""

    @abc.abstractmethod
    def set_flag(self, payment_id: int, flag: str | None) -> None:
        """Set (or clear, with None) what an operator must look at (cut to FLAG_LENGTH)."""

    @abc.abstractmethod
    def reserve_refund(self, payment_id: int, amount: Decimal) -> bool:
        """Add ``amount`` to ``refund_reserved`` only if ``Payment.can_reserve(amount)`` (it
        holds money, the sum stays within ``total_amount``); True if this call did.

        Atomic: two reservations racing on one payment can never together exceed its amount.
        """

    @abc.abstractmethod
    def release_refund(self, payment_id: int, amount: Decimal) -> None:
        """Take ``amount`` off ``refund_reserved`` (the provider refused that refund)."""

    @abc.abstractmethod
    def add_refunded(self, payment_id: int, amount: Decimal) -> Payment:
        """Add ``amount`` to ``refunded``; the payment as it is now. Holds the payment until
        the unit of work ends, so two refunds completing at once count one after the other."""

    @abc.abstractmethod
    def due_for_query(self, now: datetime, limit: int) -> list[Payment]:
        """Unpaid payments whose ``next_query_time`` has come, the longest due first."""

    @abc.abstractmethod
    def schedule_query(
        self, payment_id: int, from_attempts: int, attempts: int, next_query_time: datetime | None
    ) -> bool:
        """Set the query count and the next query's time, only if the count is still
        ``from_attempts``; True if this call did (the caller then makes that query)."""

    @abc.abstractmethod
    def paid_between(self, payment_type: str, starts: datetime, ends: datetime) -> list[Payment]:
        """The provider's payments whose money came (``callback_time``) from ``starts`` until
        before ``ends``, and was taken (paid, refunded since or not), oldest first."""


class OrderStore(abc.ABC):
    @abc.abstractmethod
    def get(self, order_sn: str) -> Order | None:
        """The order with its items, or None."""

    def status(self, order_sn: str) -> OrderStatus | None:
        """The order's status, or None for no such order (stores may read it alone)."""
        order = self.get(order_sn)
        return None if order is None else order.status

    def move(self, order_sn: str, from_status: OrderStatus, to_status: OrderStatus) -> bool:
        """Change the order's status only if it is still ``from_status``; True if this call did.
        ``IllegalMove`` for a move that ``states.ORDERS`` does not hold."""
        states.ORDERS.check(from_status, to_status, order_sn)
        return self._move(order_sn, from_status, to_status)

    @abc.abstractmethod
    def _move(self, order_sn: str, from_status: OrderStatus, to_status: OrderStatus) -> bool:
        """``move``'s compare-and-set, the move already checked."""

    @abc.abstractmethod
    def awaiting_payment_since(self, created_before: datetime, limit: int) -> list[str]:
        """Numbers of the orders still awaiting payment that were created before
        ``created_before``, the oldest first (those made at the same time in the order they
        were stored: the SQL store reads them off its (status, create_time) index, whose rows
        InnoDB keeps in primary-key order, so it sorts nothing however many are due)."""


class StockStore(abc.ABC):
    @abc.abstractmethod
    def locks_for(self, order_sn: str) -> list[StockLock]:
        """The stock locks an order holds, whatever their status."""

    def move_lock(self, lock_id: int, from_status: LockStatus, to_status: LockStatus) -> bool:
        """Change a lock's status only if it is still ``from_status``; True if this call did.
        ``IllegalMove`` for a move that ``states.STOCK_LOCKS`` does not hold."""
        states.STOCK_LOCKS.check(from_status, to_status, f"#{lock_id}")
        return self._move_lock(lock_id, from_status, to_status)

    @abc.abstractmethod
    def _move_lock(self, lock_id: int, from_status: LockStatus, to_status: LockStatus) -> bool:
        """``move_lock``'s compare-and-set, the move already checked."""

    @abc.abstractmethod
    def deduct(self, sku_id: int, quantity: int) -> None:
        """Ship locked units: stock -n, stock_locked -n, sales +n."""

    @abc.abstractmethod
    def release(self, sku_id: int, quantity: int) -> None:
        """Free locked units of an order that will not ship: stock_locked -n."""


class PointsStore(abc.ABC):
    @abc.abstractmethod
    def claim(
        self, order_sn: str, member_id: int, integration: int, growth: int, kind: str = PointsKind.AWARD
    ) -> bool:
        """Record this kind of change (award, revoke) for this order in the ledger; False if
        it was already recorded."""

    @abc.abstractmethod
    def entry(self, order_sn: str, kind: str = PointsKind.AWARD) -> LedgerEntry | None:
        """The ledger's record of this kind of change for this order, if any."""

    @abc.abstractmethod
    def credit(self, member_id: int, integration: int, growth: int) -> None:
        """Add points to the member's balance."""


class RefundStore(abc.ABC):
    """Refunds of payments, one row per payment and ``out_request_no`` (the idempotency key)."""

    @abc.abstractmethod
    def add_once(self, refund: PaymentRefund) -> tuple[PaymentRefund, bool]:
        """Store ``refund`` unless its payment already has one with its ``out_request_no``;
        the stored one, and whether this call stored it. Racing adds: exactly one row."""

    @abc.abstractmethod
    def get(self, payment_id: int, out_request_no: str) -> PaymentRefund | None:
        """The payment's refund with this request number, if any."""

    @abc.abstractmethod
    def for_payment(self, payment_id: int) -> list[PaymentRefund]:
        """The payment's refunds, oldest first."""

    def move(
        self,
        refund_id: int,
        from_status: RefundStatus,
        to_status: RefundStatus,
        *,
        update_time: datetime,
        answer: str | None = None,
    ) -> bool:
        """Change the status only if it is still ``from_status`` (and the answer, if given);
        True if this call did. ``IllegalMove`` for a move that ``states.REFUNDS`` does not hold."""
        states.REFUNDS.check(from_status, to_status, f"#{refund_id}")
        return self._move(refund_id, from_status, to_status, update_time=update_time, answer=answer)

    @abc.abstractmethod
    def _move(
        self,
        refund_id: int,
        from_status: RefundStatus,
        to_status: RefundStatus,
        *,
        update_time: datetime,
        answer: str | None,
    ) -> bool:
        """``move``'s compare-and-set, the move already checked."""

    @abc.abstractmethod
    def note(self, refund_id: int, status: RefundStatus, *, update_time: datetime, answer: str) -> bool:
        """Keep ``answer`` (what the provider said) on the refund, only while it is still
        ``status``: no move. True if this call did."""


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    event: Event
    created_at: datetime
    sent_at: datetime | None = None


class Outbox(abc.ABC):
    """The events to send, each written in the transaction of the change that causes it.

    ``add`` is the port's: the adapter stores the event (``_add``) and the port keeps its id in
    ``added`` until the unit of work collects it (``UnitOfWork.collect_new_events``).
    """

    #: The ids of the events added since the unit of work last collected them.
    added: tuple[int, ...] = ()

    def add(self, event: Event) -> int:
        """Keep ``event`` to be sent once the surrounding unit of work commits; return its id."""
        message_id = CommittedEvent(self._add(event), event)
        self.added = (*self.added, message_id)
        return message_id

    @abc.abstractmethod
    def _add(self, event: Event) -> int:
        """Store ``event``, unsent, in the surrounding transaction; return its id."""

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
#: Longer operator flags are cut to this many characters.
FLAG_LENGTH = 500
#: UTF-8 bytes kept of a notification's raw body and detail, and of a payment's callback: what a
#: TEXT column holds on MySQL/MariaDB, kept on every store alike; longer ones are cut and marked
#: (``core.truncation.fit``).
TEXT_BYTES = 65_535


def _given(trade_no, callback_time, callback_content) -> dict:
    """A payment move's other columns, those given (not None), its body fitted to TEXT_BYTES."""
    given = {
        "trade_no": trade_no,
        "callback_time": callback_time,
        "callback_content": fit(callback_content, TEXT_BYTES),
    }
    return {name: value for name, value in given.items() if value is not None}


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
        """Keep ``record`` (``raw`` and ``detail`` fitted to TEXT_BYTES); return it as kept, with its id."""

    @abc.abstractmethod
    def get(self, record_id: int) -> NotificationRecord | None:
        """The record with this id, or None."""

    @abc.abstractmethod
    def accepted(self, provider: str, notify_id: str) -> NotificationRecord | None:
        """The first record of this provider's ``notify_id`` that was answered ``success``."""

    @abc.abstractmethod
    def recent(self, limit: int, provider: str | None = None) -> list[NotificationRecord]:
        """The latest records, newest first, of one provider or all."""


#: The differences a bill run keeps, each cut to DETAIL_LENGTH: the rest are counted in one line
#: more (the payments they are about are flagged anyway).
BILL_DIFFERENCES_KEPT = 30


def kept_differences(differences) -> tuple[str, ...]:
    """What a store keeps of a bill run's ``differences`` (BILL_DIFFERENCES_KEPT, each cut)."""
    kept = tuple(difference[:DETAIL_LENGTH] for difference in differences[:BILL_DIFFERENCES_KEPT])
    more = len(differences) - len(kept)
    return (*kept, f"... and {more} more (see the flagged payments)") if more else kept


class BillRunStore(abc.ABC):
    """The runs over the providers' daily bills (``core.bill_runs``), each kept as it ended."""

    @abc.abstractmethod
    def add(self, run: BillRun) -> BillRun:
        """Keep ``run`` (its differences as ``kept_differences`` keeps them, its detail cut to
        DETAIL_LENGTH); return it as kept, with its id."""

    @abc.abstractmethod
    def recent(self, limit: int) -> list[BillRun]:
        """The latest runs, newest first."""

    @abc.abstractmethod
    def done(self, provider: str, bill_date: date) -> BillRun | None:
        """The latest run of this provider's bill of ``bill_date`` that read it ("done"), if any."""


class UnitOfWork(abc.ABC):
    """One transaction over every store; rolls back unless ``commit()`` was called.

    Events leave with the commit: the unit of work collects the ids of the events its outbox
    was given (``collect_new_events``), and once it ends, hands those it committed to
    ``after_commit`` (the outbox relay's ``flush``, which sends them at once), exactly once;
    what a rollback discarded is never handed over. Adapters fill ``_commit`` and ``_rollback``.
    """

    payments: PaymentStore
    refunds: RefundStore
    orders: OrderStore
    stock: StockStore
    points: PointsStore
    outbox: Outbox
    notifications: NotificationLog
    trace: FulfilmentTrace
    bill_runs: BillRunStore
    #: Called with the outbox ids of the events this unit of work committed, once it has ended
    #: (``relayed`` sets it); None: nobody is told, and the relay's sweep sends them later.
    after_commit: Callable[..., object] | None = None
    #: The ids of the events committed and not yet handed over.
    committed: tuple[int, ...] = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.rollback()
        self.hand_over()

    def commit(self) -> None:
        """Make every change durable, and the events written so far due to leave."""
        self._commit()
        self.committed = (*self.committed, *self.collect_new_events())

    def rollback(self) -> None:
        """Discard what was not committed (the events written since too); harmless after a commit."""
        self._rollback()
        self.collect_new_events()

    def collect_new_events(self) -> tuple[int, ...]:
        """The outbox ids of the events written since the last commit or rollback, taken."""
        new, self.outbox.added = self.outbox.added, ()
        return new

    def hand_over(self) -> None:
        """Give the committed events' ids to ``after_commit``, once (called as the unit of work ends)."""
        committed, self.committed = self.committed, ()
        if committed and self.after_commit is not None:
            self.after_commit(*committed)

    @abc.abstractmethod
    def _commit(self) -> None: ...

    @abc.abstractmethod
    def _rollback(self) -> None:
        """Discard what was not committed; harmless after a commit."""


def relayed(uow: Callable[[], UnitOfWork], after_commit: Callable[..., object]) -> Callable[[], UnitOfWork]:
    """Units of work like ``uow``'s that hand the events they commit to ``after_commit``
    (the composition root passes the relay's ``flush``)."""

    def unit_of_work() -> UnitOfWork:
        made = uow()
        made.after_commit = after_commit
        return made

    return unit_of_work
