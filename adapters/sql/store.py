"""The store ports on Flask-SQLAlchemy's ``db``: one transaction per unit of work.

Views read and write the tables through Core statements, never through ORM objects, so a
read always shows what the database holds (no identity map serving a stale row after a
compare-and-set UPDATE). Every "at most once" change is an ``UPDATE ... WHERE status = :from``
(``compare_and_set``, the one every status move runs) or an insert that ignores duplicates;
neither rolls back the surrounding transaction when it loses a race.
"""

import functools
import json
from dataclasses import asdict, replace
from datetime import datetime
from decimal import Decimal
from enum import IntEnum

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from ...core import states
from ...core.bills import DONE, BillRun
from ...core.errors import TransactionConflict
from ...core.events import Event
from ...core.model import (
    MONEY_TAKEN,
    LedgerEntry,
    LockStatus,
    NotificationRecord,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentRefund,
    PaymentStatus,
    PointsKind,
    RefundStatus,
    StockLock,
)
from ...core.money import CENT
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
from ..metrics import METRICS
from . import models
from .models import db

payment_info = models.PaymentInfo.__table__
payment_settlement = models.PaymentSettlement.__table__
payment_refund = models.PaymentRefund.__table__
payment_bill_run = models.PaymentBillRun.__table__
oms_order = models.Order.__table__
oms_order_item = models.OrderItem.__table__
wms_ware_sku = models.WareSku.__table__
wms_stock_lock = models.StockLock.__table__
ums_member = models.Member.__table__
ums_points_ledger = models.PointsLedger.__table__
outbox_event = models.OutboxEvent.__table__
payment_notification = models.PaymentNotification.__table__
fulfilment_trace = models.FulfilmentTrace.__table__

_INSERT_IGNORING_DUPLICATES = {
    "sqlite": lambda table: sqlite.insert(table).on_conflict_do_nothing(),
    "postgresql": lambda table: postgresql.insert(table).on_conflict_do_nothing(),
    "mysql": lambda table: insert(table).prefix_with("IGNORE"),
    "mariadb": lambda table: insert(table).prefix_with("IGNORE"),
}


def insert_ignoring_duplicates(session, table, values: dict) -> bool:
    """Insert a row unless a unique key already holds it; True if this call inserted it.

    The database settles the race (the loser waits for the winner's commit, then skips),
    so the caller's transaction stays usable, which catching an IntegrityError would not
    allow. Caveat: MySQL's INSERT IGNORE also downgrades other errors to warnings.
    """
    return session.execute(_ignoring_duplicates(session.get_bind().dialect.name, table), values).rowcount == 1


@functools.cache
def _ignoring_duplicates(dialect: str, table):
    """The statement, built once per database and table (building one costs more than running it)."""
    try:
        return _INSERT_IGNORING_DUPLICATES[dialect](table)
    except KeyError:
        raise NotImplementedError(f"no insert-ignoring-duplicates for {dialect}") from None


def _money(value: Decimal) -> Decimal:
    """Columns keep four places (the seed's DECIMAL(18,4)); the domain counts in cents."""
    return value.quantize(CENT)


def changed_one(session, statement) -> bool:
    return session.execute(statement).rowcount == 1


def compare_and_set(session, table, key, status: str, from_status: IntEnum, /, *where, **values) -> bool:
    """``UPDATE table SET values WHERE <key column> = <key value> AND status = :from [AND where]``:
    True if this call changed the row. ``key`` is ``(column name, value)``; ``status`` the column's name."""
    column, value = key
    if where:
        c = table.c
        statement = (
            update(table).where(c[column] == value, c[status] == int(from_status), *where).values(**values)
        )
        return changed_one(session, statement)
    statement = _compare_and_set(table, column, status, tuple(sorted(values)))
    given = {f"set_{name}": given for name, given in values.items()}
    return session.execute(statement, {"cas_key": value, "cas_from": int(from_status), **given}).rowcount == 1


@functools.lru_cache(maxsize=256)
def _compare_and_set(table, column: str, status: str, names: tuple[str, ...]):
    """``compare_and_set``'s statement for these columns, built once (building one costs more
    than running it); the values are bound as ``set_<name>``."""
    c = table.c
    return (
        update(table)
        .where(c[column] == bindparam("cas_key"), c[status] == bindparam("cas_from"))
        .values({name: bindparam(f"set_{name}") for name in names})
    )


def _update_one(session, statement, what: str) -> None:
    """Run an UPDATE that must hit exactly one row; a missing row is a bug, not a no-op."""
    if not changed_one(session, statement):
        raise LookupError(f"no such {what}")


def _payment(row) -> Payment:
    return Payment(
        id=row.id,
        order_sn=row.order_sn,
        payment_type=row.payment_type,
        out_trade_no=row.out_trade_no,
        total_amount=_money(row.total_amount),
        subject=row.subject,
        create_time=row.create_time,
        trade_no=row.trade_no,
        payment_status=PaymentStatus(row.payment_status),
        callback_time=row.callback_time,
        callback_content=row.callback_content,
        refund_reserved=_money(row.refund_reserved),
        refunded=_money(row.refunded),
        refund_reason=row.refund_reason,
        flag=row.flag,
        query_attempts=row.query_attempts,
        next_query_time=row.next_query_time,
        payment_type_code=row.payment_type_code,
    )


def _refund(row) -> PaymentRefund:
    return PaymentRefund(
        id=row.id,
        payment_id=row.payment_id,
        order_sn=row.order_sn,
        out_request_no=row.out_request_no,
        amount=_money(row.amount),
        reason=row.reason,
        status=RefundStatus(row.status),
        answer=row.answer,
        create_time=row.create_time,
        update_time=row.update_time,
    )


class SqlUnitOfWork(UnitOfWork):
    """A transaction on the current app context's database (``_transaction`` says on which
    connection). Do not nest units of work, nor call a store that commits ``db.session`` inside
    one: sharing the session, the inner one would end the outer one's transaction. Nor read
    through ``db.session`` inside one: on a connection of its own, it does not see what the unit
    of work wrote and has not committed. The status moves it made are counted when it commits (a
    rolled-back move did not happen).
    """

    def __init__(self, clock=datetime.now):
        self.transaction = _transaction()
        self.clock = clock
        self.payments = _PaymentView(self)
        self.refunds = _RefundView(self)
        self.orders = _OrderView(self)
        self.stock = _StockView(self)
        self.points = _PointsView(self)
        self.outbox = _OutboxView(self)
        self.notifications = _NotificationView(self)
        self.trace = _TraceView(self)
        self.bill_runs = _BillRunView(self)
        self.moves: list[tuple[str, IntEnum, IntEnum]] = []  # (machine's name, from, to), uncommitted
        #: Order statuses read with their payments (``by_trade``), as this transaction sees them
        #: (its snapshot: MariaDB's REPEATABLE READ, SQLite's write lock), until it moves the order.
        self.order_statuses: dict[str, int | None] = {}

    def __exit__(self, kind, error, traceback):
        super().__exit__(kind, error, traceback)
        if isinstance(error, DBAPIError) and _error_code(error) in _CONFLICTS:
            raise TransactionConflict(str(error.orig)) from error

    def _commit(self):
        self.transaction.commit()
        self.order_statuses = {}
        moves, self.moves = self.moves, []
        METRICS.transitions(moves)

    def _rollback(self):
        self.transaction.rollback()
        self.order_statuses = {}
        self.moves = []


#: MariaDB's and MySQL's codes for a transaction aborted by a conflict: the deadlock's victim
#: (ER_LOCK_DEADLOCK) and a row changed since the snapshot (ER_CHECKREAD, innodb_snapshot_isolation).
_CONFLICTS = frozenset({1213, 1020})


def _error_code(error: DBAPIError):
    """The server's error number (PyMySQL's and mysqlclient's first argument), else None."""
    args = getattr(error.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _transaction():
    """Where a unit of work runs its statements: on a pooled connection of its own, past the
    ORM session's bookkeeping, which its Core statements do not need and which cost a
    notification about 7 % of its CPU (serial, in one process; too little for the noise of
    benchmarks/notify_pipeline.py on a 2-core machine to show); on the app context's
    ``db.session`` where that is already in a transaction (a page that read through it keeps
    holding one connection, not two) and always on SQLite, whose write lock is the whole file:
    a second connection would wait for the session's."""
    session = db.session
    engine = db.engine
    if engine.dialect.name == "sqlite" or (session.registry.has() and session().in_transaction()):
        return _OnSession(session)
    return _OnConnection(engine)


class _Statements:
    """What the views run their Core statements on: ``_open()``'s connection, in its transaction."""

    __slots__ = ()

    def execute(self, statement, params=None):
        return self._open().execute(statement, params)

    def scalar(self, statement, params=None):
        return self._open().scalar(statement, params)

    def scalars(self, statement, params=None):
        return self._open().scalars(statement, params)


class _OnSession(_Statements):
    """The unit of work's statements on the session's connection, in its transaction."""

    __slots__ = ("session",)

    def __init__(self, session):
        self.session = session

    def _open(self):
        return self.session.connection()

    def get_bind(self):
        return self.session.get_bind()

    def commit(self):
        self.session.commit()

    def rollback(self):
        self.session.rollback()


class _OnConnection(_Statements):
    """The unit of work's statements on a connection of the engine's pool, taken at the first
    statement and given back when the transaction ends (committed or rolled back)."""

    __slots__ = ("engine", "connection")

    def __init__(self, engine):
        self.engine = engine
        self.connection = None

    def _open(self):
        if self.connection is None:
            self.connection = self.engine.connect()
        return self.connection

    def get_bind(self):
        return self.engine

    def commit(self):
        self._end(Connection.commit)

    def rollback(self):
        self._end(Connection.rollback)

    def _end(self, end):
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                end(connection)
            finally:
                connection.close()  # back to the pool (prepare_engine rolls back what is left open)


class _View:
    def __init__(self, uow: SqlUnitOfWork):
        self.uow = uow
        self.session = uow.transaction

    def _set_status(self, machine, table, key, status: str, from_status, to_status, /, **values) -> bool:
        """A status move (checked already) as a compare-and-set, kept in ``uow.moves`` if this call made it."""
        moved = compare_and_set(
            self.session, table, key, status, from_status, **{status: int(to_status)}, **values
        )
        if moved:
            self.uow.moves.append((machine.name, machine.statuses(from_status), machine.statuses(to_status)))
        return moved


# The notify path's statements, built once: building one costs more than running it.
_PAYMENT_BY_ID = select(payment_info).where(payment_info.c.id == bindparam("id"))
#: With its order's status: the notify path needs both, in one round trip instead of two.
_PAYMENT_BY_TRADE = (
    select(payment_info, oms_order.c.status.label("order_status"))
    .select_from(payment_info.outerjoin(oms_order, oms_order.c.order_sn == payment_info.c.order_sn))
    .where(
        payment_info.c.payment_type == bindparam("payment_type"),
        payment_info.c.out_trade_no == bindparam("out_trade_no"),
    )
)
_ORDER_STATUS = select(oms_order.c.status).where(oms_order.c.order_sn == bindparam("order_sn"))
_OUTBOX_ADD = insert(outbox_event)
_OUTBOX_MARK_SENT = (
    update(outbox_event)
    .where(outbox_event.c.id.in_(bindparam("ids", expanding=True)))
    .values(sent_time=bindparam("at"))
)
_NOTIFICATION_ADD = insert(payment_notification)
_NOTIFICATION_ACCEPTED = (
    select(payment_notification)
    .where(
        payment_notification.c.provider == bindparam("provider"),
        payment_notification.c.notify_id == bindparam("notify_id"),
        payment_notification.c.accepted.is_(True),
    )
    .order_by(payment_notification.c.id)
    .limit(1)
)


class _PaymentView(_View, PaymentStore):
    def _one(self, *where) -> Payment | None:
        return self._first(select(payment_info).where(*where))

    def _first(self, statement, params=None) -> Payment | None:
        row = self.session.execute(statement, params).first()
        return None if row is None else _payment(row)

    def get(self, payment_id):
        return self._first(_PAYMENT_BY_ID, {"id": payment_id})

    def find(self, order_sn, payment_type):
        return self._one(payment_info.c.order_sn == order_sn, payment_info.c.payment_type == payment_type)

    def by_trade(self, payment_type, out_trade_no):
        row = self.session.execute(
            _PAYMENT_BY_TRADE, {"payment_type": payment_type, "out_trade_no": out_trade_no}
        ).first()
        if row is None:
            return None
        self.uow.order_statuses[row.order_sn] = row.order_status
        return _payment(row)

    def for_order(self, order_sn):
        rows = self.session.execute(
            select(payment_info).where(payment_info.c.order_sn == order_sn).order_by(payment_info.c.id)
        )
        return [_payment(row) for row in rows]

    def add_once(self, payment):
        values = asdict(payment)  # the dataclass fields are payment_info's column names
        del values["id"]
        values["payment_status"] = int(payment.payment_status)
        insert_ignoring_duplicates(self.session, payment_info, values)
        stored = self.find(payment.order_sn, payment.payment_type)
        if stored is None:  # lost to the (payment_type, out_trade_no) key, or a stale snapshot hid the winner
            raise ValueError(f"{payment.payment_type} trade {payment.out_trade_no} belongs to another order")
        return stored

    def _move(self, payment_id, from_status, to_status, given):
        return self._set_status(
            states.PAYMENTS,
            payment_info,
            ("id", payment_id),
            "payment_status",
            from_status,
            to_status,
            **given,
        )

    def _set(self, payment_id, *where, **values) -> bool:
        return changed_one(
            self.session, update(payment_info).where(payment_info.c.id == payment_id, *where).values(**values)
        )

    def _locked(self, payment_id) -> Payment:
        """The payment, its row locked until the transaction ends (SQLite: the whole database
        already is, from BEGIN IMMEDIATE). Sums are then made in Decimal here, not in SQL,
        where SQLite would turn the text it keeps amounts in into floats."""
        row = self.session.execute(
            select(payment_info).where(payment_info.c.id == payment_id).with_for_update()
        ).first()
        if row is None:
            raise LookupError(f"no such payment {payment_id}")
        return _payment(row)

    def settle_order(self, order_sn, payment_id):
        return insert_ignoring_duplicates(
            self.session,
            payment_settlement,
            {"order_sn": order_sn, "payment_id": payment_id, "create_time": self.uow.clock()},
        )

    def settled_by(self, order_sn):
        return self.session.scalar(
            select(payment_settlement.c.payment_id).where(payment_settlement.c.order_sn == order_sn)
        )

    def mark_owed(self, payment_id, reason):
        return self._set(payment_id, payment_info.c.refund_reason.is_(None), refund_reason=reason)

    def set_flag(self, payment_id, flag):
        _update_one(
            self.session,
            update(payment_info)
            .where(payment_info.c.id == payment_id)
            .values(flag=None if flag is None else flag[:FLAG_LENGTH]),
            f"payment {payment_id}",
        )

    def reserve_refund(self, payment_id, amount):
        payment = self._locked(payment_id)
        if not payment.can_reserve(amount):
            return False
        return self._set(payment_id, refund_reserved=payment.refund_reserved + amount)

    def release_refund(self, payment_id, amount):
        payment = self._locked(payment_id)
        self._set(payment_id, refund_reserved=payment.refund_reserved - amount)

    def add_refunded(self, payment_id, amount):
        payment = self._locked(payment_id)
        payment.refunded += amount
        self._set(payment_id, refunded=payment.refunded)
        return payment

    def due_for_query(self, now, limit):
        c = payment_info.c
        rows = self.session.execute(
            select(payment_info)
            .where(c.payment_status == int(PaymentStatus.UNPAID), c.next_query_time <= now)
            .order_by(c.next_query_time, c.id)
            .limit(limit)
        )
        return [_payment(row) for row in rows]

    def schedule_query(self, payment_id, from_attempts, attempts, next_query_time):
        return self._set(
            payment_id,
            payment_info.c.query_attempts == from_attempts,
            query_attempts=attempts,
            next_query_time=next_query_time,
        )

    def paid_between(self, payment_type, starts, ends):
        c = payment_info.c
        rows = self.session.execute(
            select(payment_info)
            .where(
                c.payment_type == payment_type,
                c.payment_status.in_([int(status) for status in MONEY_TAKEN]),
                c.callback_time >= starts,
                c.callback_time < ends,
            )
            .order_by(c.callback_time, c.id)
        )
        return [_payment(row) for row in rows]


class _RefundView(_View, RefundStore):
    def add_once(self, refund):
        values = asdict(refund)
        del values["id"]
        values["status"] = int(refund.status)
        created = insert_ignoring_duplicates(self.session, payment_refund, values)
        stored = self.get(refund.payment_id, refund.out_request_no)
        if stored is None:  # cannot happen: the key that refused the row holds it
            raise LookupError(f"refund {refund.out_request_no} of payment {refund.payment_id} vanished")
        return stored, created

    def get(self, payment_id, out_request_no):
        c = payment_refund.c
        row = self.session.execute(
            select(payment_refund).where(c.payment_id == payment_id, c.out_request_no == out_request_no)
        ).first()
        return None if row is None else _refund(row)

    def for_payment(self, payment_id):
        c = payment_refund.c
        rows = self.session.execute(select(payment_refund).where(c.payment_id == payment_id).order_by(c.id))
        return [_refund(row) for row in rows]

    def _move(self, refund_id, from_status, to_status, *, update_time, answer):
        values = (
            {"update_time": update_time} if answer is None else {"update_time": update_time, "answer": answer}
        )
        return self._set_status(
            states.REFUNDS, payment_refund, ("id", refund_id), "status", from_status, to_status, **values
        )

    def note(self, refund_id, status, *, update_time, answer):
        return compare_and_set(
            self.session,
            payment_refund,
            ("id", refund_id),
            "status",
            status,
            update_time=update_time,
            answer=answer,
        )


class _OrderView(_View, OrderStore):
    def get(self, order_sn):
        row = self.session.execute(select(oms_order).where(oms_order.c.order_sn == order_sn)).first()
        if row is None:
            return None
        items = self.session.execute(
            select(oms_order_item).where(oms_order_item.c.order_id == row.id).order_by(oms_order_item.c.id)
        )
        return Order(
            id=row.id,
            order_sn=row.order_sn,
            member_id=row.member_id,
            status=OrderStatus(row.status),
            pay_amount=_money(row.pay_amount),
            integration=row.integration,
            growth=row.growth,
            items=[OrderItem(i.sku_id, i.sku_name, i.sku_quantity, _money(i.sku_price)) for i in items],
            create_time=row.create_time,
        )

    def status(self, order_sn):
        known = self.uow.order_statuses
        status = (
            known[order_sn]
            if order_sn in known
            else self.session.scalar(_ORDER_STATUS, {"order_sn": order_sn})
        )
        return None if status is None else OrderStatus(status)

    def _move(self, order_sn, from_status, to_status):
        self.uow.order_statuses.pop(order_sn, None)
        return self._set_status(
            states.ORDERS, oms_order, ("order_sn", order_sn), "status", from_status, to_status
        )

    def awaiting_payment_since(self, created_before, limit):
        c = oms_order.c
        return list(
            self.session.scalars(
                select(c.order_sn)
                .where(c.status == int(OrderStatus.AWAITING_PAYMENT), c.create_time < created_before)
                .order_by(c.create_time, c.id)
                .limit(limit)
            )
        )


class _StockView(_View, StockStore):
    def locks_for(self, order_sn):
        rows = self.session.execute(
            select(wms_stock_lock).where(wms_stock_lock.c.order_sn == order_sn).order_by(wms_stock_lock.c.id)
        )
        return [StockLock(r.id, r.order_sn, r.sku_id, r.quantity, LockStatus(r.status)) for r in rows]

    def _move_lock(self, lock_id, from_status, to_status):
        return self._set_status(
            states.STOCK_LOCKS, wms_stock_lock, ("id", lock_id), "status", from_status, to_status
        )

    def deduct(self, sku_id, quantity):
        c = wms_ware_sku.c
        _update_one(
            self.session,
            update(wms_ware_sku)
            .where(c.sku_id == sku_id)
            .values(
                stock=c.stock - quantity, stock_locked=c.stock_locked - quantity, sales=c.sales + quantity
            ),
            f"sku {sku_id}",
        )

    def release(self, sku_id, quantity):
        c = wms_ware_sku.c
        _update_one(
            self.session,
            update(wms_ware_sku).where(c.sku_id == sku_id).values(stock_locked=c.stock_locked - quantity),
            f"sku {sku_id}",
        )


class _PointsView(_View, PointsStore):
    def claim(self, order_sn, member_id, integration, growth, kind=PointsKind.AWARD):
        return insert_ignoring_duplicates(
            self.session,
            ums_points_ledger,
            {
                "order_sn": order_sn,
                "kind": kind,
                "member_id": member_id,
                "integration": integration,
                "growth": growth,
                "create_time": self.uow.clock(),
            },
        )

    def entry(self, order_sn, kind=PointsKind.AWARD):
        c = ums_points_ledger.c
        row = self.session.execute(
            select(ums_points_ledger).where(c.order_sn == order_sn, c.kind == kind)
        ).first()
        return (
            None
            if row is None
            else LedgerEntry(row.order_sn, row.kind, row.member_id, row.integration, row.growth)
        )

    def credit(self, member_id, integration, growth):
        c = ums_member.c
        _update_one(
            self.session,
            update(ums_member)
            .where(c.id == member_id)
            .values(integration=c.integration + integration, growth=c.growth + growth),
            f"member {member_id}",
        )


class _OutboxView(_View, Outbox):
    def _add(self, event):
        result = self.session.execute(
            _OUTBOX_ADD,
            {
                "name": event.name,
                "order_sn": event.order_sn,
                "payload": json.dumps(event.payload(), ensure_ascii=False),
                "create_time": self.uow.clock(),
            },
        )
        return result.inserted_primary_key[0]

    def _messages(self, *where, limit):
        rows = self.session.execute(
            select(outbox_event).where(*where).order_by(outbox_event.c.id).limit(limit)
        )
        return [OutboxMessage(r.id, Event(**json.loads(r.payload)), r.create_time, r.sent_time) for r in rows]

    def unsent(self, limit, ids=None):
        c = outbox_event.c
        return self._messages(
            c.sent_time.is_(None), *([] if ids is None else [c.id.in_(list(ids))]), limit=limit
        )

    def mark_sent(self, ids, at):
        self.session.execute(_OUTBOX_MARK_SENT, {"ids": [int(i) for i in ids], "at": at})

    def unsettled(self, sent_before, limit):
        c = outbox_event.c
        return self._messages(c.settled_time.is_(None), c.sent_time < sent_before, limit=limit)

    def settle(self, ids, at):
        self.session.execute(
            update(outbox_event).where(outbox_event.c.id.in_(list(ids))).values(settled_time=at)
        )


class _TraceView(_View, FulfilmentTrace):
    def record(self, order_sn, step, outcome, detail=""):
        self.session.execute(
            insert(fulfilment_trace).values(
                order_sn=order_sn,
                step=step,
                outcome=outcome,
                detail=detail[:DETAIL_LENGTH],
                at=self.uow.clock(),
            )
        )

    def for_order(self, order_sn):
        c = fulfilment_trace.c
        rows = self.session.execute(select(fulfilment_trace).where(c.order_sn == order_sn).order_by(c.id))
        return [TraceEntry(r.order_sn, r.step, r.outcome, r.detail, r.at) for r in rows]


def _notification(row) -> NotificationRecord:
    return NotificationRecord(
        id=row.id,
        provider=row.provider,
        received_at=row.received_at,
        raw=row.raw,
        verified=bool(row.verified),
        accepted=bool(row.accepted),
        outcome=row.outcome,
        notify_id=row.notify_id,
        out_trade_no=row.out_trade_no,
        detail=row.detail or "",
        replay_of=row.replay_of,
        source=row.source,
        headers=row.headers,
    )


class _NotificationView(_View, NotificationLog):
    def add(self, record):
        record = fit_record(record, TEXT_BYTES)
        values = asdict(record)
        del values["id"]
        result = self.session.execute(_NOTIFICATION_ADD, values)
        return replace(record, id=result.inserted_primary_key[0])

    def get(self, record_id):
        row = self.session.execute(
            select(payment_notification).where(payment_notification.c.id == record_id)
        ).first()
        return None if row is None else _notification(row)

    def accepted(self, provider, notify_id):
        row = self.session.execute(
            _NOTIFICATION_ACCEPTED, {"provider": provider, "notify_id": notify_id}
        ).first()
        return None if row is None else _notification(row)

    def recent(self, limit, provider=None):
        c = payment_notification.c
        query = select(payment_notification).order_by(c.id.desc()).limit(limit)
        if provider is not None:
            query = query.where(c.provider == provider)
        return [_notification(row) for row in self.session.execute(query)]


def _bill_run(row) -> BillRun:
    return BillRun(
        id=row.id,
        provider=row.provider,
        bill_date=row.bill_date,
        started_at=row.started_at,
        finished_at=row.finished_at,
        outcome=row.outcome,
        trade_lines=row.trade_lines,
        refund_lines=row.refund_lines,
        matched=row.matched,
        repaired=row.repaired,
        refunds_recorded=row.refunds_recorded,
        differences=tuple(json.loads(row.differences)),
        detail=row.detail,
    )


class _BillRunView(_View, BillRunStore):
    def add(self, run):
        run = replace(run, differences=kept_differences(run.differences), detail=run.detail[:DETAIL_LENGTH])
        values = asdict(run)
        del values["id"]
        values["differences"] = json.dumps(list(run.differences), ensure_ascii=False)
        result = self.session.execute(insert(payment_bill_run).values(values))
        return replace(run, id=result.inserted_primary_key[0])

    def recent(self, limit):
        rows = self.session.execute(
            select(payment_bill_run).order_by(payment_bill_run.c.id.desc()).limit(limit)
        )
        return [_bill_run(row) for row in rows]

    def done(self, provider, bill_date):
        c = payment_bill_run.c
        row = self.session.execute(
            select(payment_bill_run)
            .where(c.provider == provider, c.bill_date == bill_date, c.outcome == DONE)
            .order_by(c.id.desc())
            .limit(1)
        ).first()
        return None if row is None else _bill_run(row)
