"""A unit of work over dictionaries, with the same compare-and-set rules as the SQL store.

Units of work run one at a time (a lock) and undo their changes unless committed, so an
uncommitted unit of work leaves no trace, as a database transaction would. Every status move
is ``InMemoryUnitOfWork.compare_and_set``.
"""

import copy
import itertools
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime

from ...core.bills import DONE, BillRun
from ...core.model import (
    MONEY_TAKEN,
    LedgerEntry,
    LockStatus,
    NotificationRecord,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    PointsKind,
    StockLock,
)
from ...core.truncation import fit_record
from ...ports.store import (
    DETAIL_LENGTH,
    FLAG_LENGTH,
    TEXT_BYTES,
    BillRunStore,
    FulfilmentTrace,
    NotificationLog,
    OrderStore,
    Outbox,
    OutboxMessage,
    PaymentStore,
    PointsStore,
    RefundStore,
    StockStore,
    TraceEntry,
    UnitOfWork,
    kept_differences,
)


@dataclass
class Sku:
    sku_id: int
    sku_name: str
    stock: int
    stock_locked: int = 0
    sales: int = 0


@dataclass
class Member:
    id: int
    username: str
    integration: int = 0
    growth: int = 0


@dataclass
class Tables:
    """Everything the in-process store holds; tests arrange and inspect it directly."""

    payments: dict = field(default_factory=dict)  # id -> Payment
    orders: dict = field(default_factory=dict)  # order_sn -> Order
    locks: dict = field(default_factory=dict)  # id -> StockLock
    skus: dict = field(default_factory=dict)  # sku_id -> Sku
    members: dict = field(default_factory=dict)  # id -> Member
    ledger: dict = field(default_factory=dict)  # (order_sn, kind) -> LedgerEntry
    settlements: dict = field(default_factory=dict)  # order_sn -> id of the payment that paid it
    refunds: dict = field(default_factory=dict)  # id -> PaymentRefund
    outbox: dict = field(default_factory=dict)  # id -> [OutboxMessage, sent_at, settled_at]
    trace: dict = field(default_factory=dict)  # id -> TraceEntry
    notifications: dict = field(default_factory=dict)  # id -> NotificationRecord
    bill_runs: dict = field(default_factory=dict)  # id -> BillRun
    seckill_sales: dict = field(default_factory=dict)  # id -> Sale (its generation the gate's load)
    seckill_sold: dict = field(default_factory=dict)  # sale id -> units its orders hold


class InMemoryDatabase:
    """Shared state of every in-process unit of work."""

    def __init__(self, clock=datetime.now):
        self.tables = Tables()
        self.lock = threading.RLock()
        self.clock = clock
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def add_member(self, member_id: int, username: str) -> Member:
        with self.lock:
            member = self.tables.members[member_id] = Member(member_id, username)
            return member

    def add_sku(self, sku_id: int, sku_name: str, stock: int) -> Sku:
        with self.lock:
            sku = self.tables.skus[sku_id] = Sku(sku_id, sku_name, stock)
            return sku

    def add_order(self, order: Order, locks=()):
        """Arrange an order and its stock locks ``[(sku_id, quantity)]`` as the order service would."""
        with self.lock:
            if order.create_time is None:
                order.create_time = self.clock()
            self.tables.orders[order.order_sn] = order
            for sku_id, quantity in locks:
                lock_id = self.next_id()
                self.tables.locks[lock_id] = StockLock(
                    lock_id, order.order_sn, sku_id, quantity, LockStatus.LOCKED
                )
                self.tables.skus[sku_id].stock_locked += quantity

    def unit_of_work(self) -> "InMemoryUnitOfWork":
        return InMemoryUnitOfWork(self)


_MISSING = object()


class InMemoryUnitOfWork(UnitOfWork):
    """Serialises on the database lock and keeps an undo log, so rollback restores."""

    def __init__(self, db: InMemoryDatabase):
        self.db = db
        self.t = db.tables
        self._undo = {}
        self.payments = _PaymentView(self)
        self.refunds = _RefundView(self)
        self.orders = _OrderView(self)
        self.stock = _StockView(self)
        self.points = _PointsView(self)
        self.outbox = _OutboxView(self)
        self.notifications = _NotificationView(self)
        self.trace = _TraceView(self)
        self.bill_runs = _BillRunView(self)

    def __enter__(self):
        self.db.lock.acquire()
        return self

    def __exit__(self, *exc_info):
        try:
            self.rollback()
        finally:
            self.db.lock.release()
        self.hand_over()  # with the lock released: the relay takes it again, as may what the bus runs

    def now(self):
        return self.db.clock()

    def touch(self, table: str, key):
        """Remember the original of ``table[key]`` before the first change to it."""
        if (table, key) not in self._undo:
            container = getattr(self.t, table)
            if isinstance(container, set):
                original = key in container
            else:
                # Not deepcopy(container.get(key, _MISSING)): a deep copy of the sentinel is
                # another object, and rollback would store it instead of removing the row.
                original = copy.deepcopy(container[key]) if key in container else _MISSING
            self._undo[(table, key)] = original

    def compare_and_set(self, table: str, key, status: str, from_status, /, **changes) -> bool:
        """Change the fields ``changes`` of ``table[key]`` only if its ``status`` field is still
        ``from_status``; True if this call did. A frozen row is replaced, any other changed in place."""
        rows = getattr(self.t, table)
        row = rows.get(key)
        if row is None or getattr(row, status) != from_status:
            return False
        self.touch(table, key)
        if row.__dataclass_params__.frozen:
            rows[key] = replace(row, **changes)
        else:
            for name, value in changes.items():
                setattr(row, name, value)
        return True

    def _commit(self):
        self._undo.clear()

    def _rollback(self):
        for (table, key), original in self._undo.items():
            container = getattr(self.t, table)
            if isinstance(container, set):
                (container.add if original else container.discard)(key)
            elif original is _MISSING:
                container.pop(key, None)
            elif type(container.get(key)) is type(original) and hasattr(original, "__dict__"):
                vars(container[key]).update(vars(original))  # in place: callers' references stay live
            else:
                container[key] = original
        self._undo.clear()


class _PaymentView(PaymentStore):
    def __init__(self, uow):
        self.uow = uow

    def get(self, payment_id):
        return copy.copy(self.uow.t.payments.get(payment_id))

    def find(self, order_sn, payment_type):
        return next(
            (
                copy.copy(p)
                for p in self.uow.t.payments.values()
                if (p.order_sn, p.payment_type) == (order_sn, payment_type)
            ),
            None,
        )

    def by_trade(self, payment_type, out_trade_no):
        return next(
            (
                copy.copy(p)
                for p in self.uow.t.payments.values()
                if (p.payment_type, p.out_trade_no) == (payment_type, out_trade_no)
            ),
            None,
        )

    def for_order(self, order_sn):
        return [copy.copy(p) for p in self.uow.t.payments.values() if p.order_sn == order_sn]

    def add_once(self, payment: Payment) -> Payment:
        existing = self.find(payment.order_sn, payment.payment_type)
        if existing is not None:
            return existing
        if self.by_trade(payment.payment_type, payment.out_trade_no) is not None:
            raise ValueError(f"{payment.payment_type} trade {payment.out_trade_no} belongs to another order")
        stored = replace(payment, id=self.uow.db.next_id())
        self.uow.touch("payments", stored.id)
        self.uow.t.payments[stored.id] = stored
        return copy.copy(stored)

    def _move(self, payment_id, from_status, to_status, given):
        return self.uow.compare_and_set(
            "payments", payment_id, "payment_status", from_status, payment_status=to_status, **given
        )

    def _change(self, payment_id) -> Payment:
        payment = self.uow.t.payments.get(payment_id)
        if payment is None:
            raise LookupError(f"no such payment {payment_id}")
        self.uow.touch("payments", payment_id)
        return payment

    def settle_order(self, order_sn, payment_id):
        if order_sn in self.uow.t.settlements:
            return False
        self.uow.touch("settlements", order_sn)
        self.uow.t.settlements[order_sn] = payment_id
        return True

    def settled_by(self, order_sn):
        return self.uow.t.settlements.get(order_sn)

    def mark_owed(self, payment_id, reason):
        payment = self.uow.t.payments.get(payment_id)
        if payment is None or payment.refund_reason is not None:
            return False
        self._change(payment_id).refund_reason = reason
        return True

    def set_flag(self, payment_id, flag):
        self._change(payment_id).flag = None if flag is None else flag[:FLAG_LENGTH]

    def reserve_refund(self, payment_id, amount):
        payment = self.uow.t.payments.get(payment_id)
        if payment is None or not payment.can_reserve(amount):
            return False
        self._change(payment_id).refund_reserved += amount
        return True

    def release_refund(self, payment_id, amount):
        self._change(payment_id).refund_reserved -= amount

    def add_refunded(self, payment_id, amount):
        payment = self._change(payment_id)
        payment.refunded += amount
        return copy.copy(payment)

    def due_for_query(self, now, limit):
        due = [
            p
            for p in self.uow.t.payments.values()
            if p.payment_status == PaymentStatus.UNPAID
            and p.next_query_time is not None
            and p.next_query_time <= now
        ]
        return [copy.copy(p) for p in sorted(due, key=lambda p: (p.next_query_time, p.id))[:limit]]

    def schedule_query(self, payment_id, from_attempts, attempts, next_query_time):
        payment = self.uow.t.payments.get(payment_id)
        if payment is None or payment.query_attempts != from_attempts:
            return False
        payment = self._change(payment_id)
        payment.query_attempts, payment.next_query_time = attempts, next_query_time
        return True

    def paid_between(self, payment_type, starts, ends):
        paid = [
            p
            for p in self.uow.t.payments.values()
            if p.payment_type == payment_type
            and p.payment_status in MONEY_TAKEN
            and p.callback_time is not None
            and starts <= p.callback_time < ends
        ]
        return [copy.copy(p) for p in sorted(paid, key=lambda p: (p.callback_time, p.id))]


class _RefundView(RefundStore):
    def __init__(self, uow):
        self.uow = uow

    def add_once(self, refund):
        existing = self.get(refund.payment_id, refund.out_request_no)
        if existing is not None:
            return existing, False
        stored = replace(refund, id=self.uow.db.next_id())
        self.uow.touch("refunds", stored.id)
        self.uow.t.refunds[stored.id] = stored
        return copy.copy(stored), True

    def get(self, payment_id, out_request_no):
        return next(
            (
                copy.copy(r)
                for r in self.uow.t.refunds.values()
                if (r.payment_id, r.out_request_no) == (payment_id, out_request_no)
            ),
            None,
        )

    def for_payment(self, payment_id):
        return [copy.copy(r) for _, r in sorted(self.uow.t.refunds.items()) if r.payment_id == payment_id]

    def _move(self, refund_id, from_status, to_status, *, update_time, answer):
        given = (
            {"update_time": update_time} if answer is None else {"update_time": update_time, "answer": answer}
        )
        return self.uow.compare_and_set(
            "refunds", refund_id, "status", from_status, status=to_status, **given
        )

    def note(self, refund_id, status, *, update_time, answer):
        return self.uow.compare_and_set(
            "refunds", refund_id, "status", status, update_time=update_time, answer=answer
        )


class _OrderView(OrderStore):
    def __init__(self, uow):
        self.uow = uow

    def get(self, order_sn):
        order = self.uow.t.orders.get(order_sn)
        return copy.deepcopy(order)

    def _move(self, order_sn, from_status, to_status):
        return self.uow.compare_and_set("orders", order_sn, "status", from_status, status=to_status)

    def awaiting_payment_since(self, created_before, limit):
        due = [
            o
            for o in self.uow.t.orders.values()
            if o.status == OrderStatus.AWAITING_PAYMENT and o.create_time < created_before
        ]
        return [o.order_sn for o in sorted(due, key=lambda o: o.create_time)[:limit]]  # stable: stored order


class _StockView(StockStore):
    def __init__(self, uow):
        self.uow = uow

    def locks_for(self, order_sn):
        return [lock for lock in self.uow.t.locks.values() if lock.order_sn == order_sn]

    def _move_lock(self, lock_id, from_status, to_status):
        return self.uow.compare_and_set("locks", lock_id, "status", from_status, status=to_status)

    def deduct(self, sku_id, quantity):
        self.uow.touch("skus", sku_id)
        sku = self.uow.t.skus[sku_id]
        sku.stock -= quantity
        sku.stock_locked -= quantity
        sku.sales += quantity

    def release(self, sku_id, quantity):
        sku = self.uow.t.skus[sku_id]  # KeyError, a LookupError, as SQL's for an unknown SKU
        self.uow.touch("skus", sku_id)
        sku.stock_locked -= quantity


class _PointsView(PointsStore):
    def __init__(self, uow):
        self.uow = uow

    def claim(self, order_sn, member_id, integration, growth, kind=PointsKind.AWARD):
        if (order_sn, kind) in self.uow.t.ledger:
            return False
        self.uow.touch("ledger", (order_sn, kind))
        self.uow.t.ledger[(order_sn, kind)] = LedgerEntry(order_sn, kind, member_id, integration, growth)
        return True

    def entry(self, order_sn, kind=PointsKind.AWARD):
        return self.uow.t.ledger.get((order_sn, kind))

    def credit(self, member_id, integration, growth):
        self.uow.touch("members", member_id)
        member = self.uow.t.members[member_id]
        member.integration += integration
        member.growth += growth


class _OutboxView(Outbox):
    def __init__(self, uow):
        self.uow = uow

    def _add(self, event):
        message_id = self.uow.db.next_id()
        self.uow.touch("outbox", message_id)
        self.uow.t.outbox[message_id] = [OutboxMessage(message_id, event, self.uow.now()), None, None]
        return message_id

    def _messages(self, keep):
        rows = sorted(self.uow.t.outbox.values(), key=lambda row: row[0].id)
        return [
            replace(message, sent_at=sent) for message, sent, settled in rows if keep(message, sent, settled)
        ]

    def unsent(self, limit, ids=None):
        wanted = None if ids is None else set(ids)
        return self._messages(lambda m, sent, _: sent is None and (wanted is None or m.id in wanted))[:limit]

    def mark_sent(self, ids, at):
        for message_id in ids:
            self.uow.touch("outbox", message_id)
            self.uow.t.outbox[message_id][1] = at

    def unsettled(self, sent_before, limit):
        return self._messages(
            lambda _, sent, settled: sent is not None and sent < sent_before and settled is None
        )[:limit]

    def settle(self, ids, at):
        for message_id in ids:
            self.uow.touch("outbox", message_id)
            self.uow.t.outbox[message_id][2] = at


class _TraceView(FulfilmentTrace):
    def __init__(self, uow):
        self.uow = uow

    def record(self, order_sn, step, outcome, detail=""):
        entry_id = self.uow.db.next_id()
        self.uow.touch("trace", entry_id)
        self.uow.t.trace[entry_id] = TraceEntry(
            order_sn, step, outcome, detail[:DETAIL_LENGTH], self.uow.now()
        )

    def for_order(self, order_sn):
        return [entry for _, entry in sorted(self.uow.t.trace.items()) if entry.order_sn == order_sn]


class _NotificationView(NotificationLog):
    def __init__(self, uow):
        self.uow = uow

    def add(self, record: NotificationRecord) -> NotificationRecord:
        stored = replace(fit_record(record, TEXT_BYTES), id=self.uow.db.next_id())
        self.uow.touch("notifications", stored.id)
        self.uow.t.notifications[stored.id] = stored
        return copy.copy(stored)

    def get(self, record_id):
        record = self.uow.t.notifications.get(record_id)
        return copy.copy(record)

    def accepted(self, provider, notify_id):
        return next(
            (
                copy.copy(r)
                for _, r in sorted(self.uow.t.notifications.items())
                if r.accepted and (r.provider, r.notify_id) == (provider, notify_id)
            ),
            None,
        )

    def recent(self, limit, provider=None):
        records = [r for r in self.uow.t.notifications.values() if provider is None or r.provider == provider]
        return [copy.copy(r) for r in sorted(records, key=lambda r: r.id, reverse=True)[:limit]]


class _BillRunView(BillRunStore):
    def __init__(self, uow):
        self.uow = uow

    def add(self, run: BillRun) -> BillRun:
        stored = replace(
            run,
            id=self.uow.db.next_id(),
            differences=kept_differences(run.differences),
            detail=run.detail[:DETAIL_LENGTH],
        )
        self.uow.touch("bill_runs", stored.id)
        self.uow.t.bill_runs[stored.id] = stored
        return stored

    def recent(self, limit):
        return sorted(self.uow.t.bill_runs.values(), key=lambda r: r.id, reverse=True)[:limit]

    def done(self, provider, bill_date):
        return next(
            (
                r
                for r in self.recent(len(self.uow.t.bill_runs))
                if (r.provider, r.bill_date, r.outcome) == (provider, bill_date, DONE)
            ),
            None,
        )
