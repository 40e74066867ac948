"""The store ports on Flask-SQLAlchemy's ``db.session``: one transaction per unit of work.

Views read and write the tables through Core statements, never through ORM objects, so a
read always shows what the database holds (no identity map serving a stale row after a
compare-and-set UPDATE). Every "at most once" change is an ``UPDATE ... WHERE status = :from``
or an insert that ignores duplicates; neither rolls back the surrounding transaction when it
loses a race.
"""

import json
from dataclasses import asdict, replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ...core.events import Event
from ...core.model import (
    LockStatus,
    NotificationRecord,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentStatus,
    StockLock,
)
from ...core.money import CENT
from ...ports.store import (
    DETAIL_LENGTH,
    FulfilmentTrace,
    NotificationLog,
    OrderStore,
    Outbox,
    OutboxMessage,
    PaymentStore,
    PointsStore,
    StockStore,
    TraceEntry,
    UnitOfWork,
)
from . import models
from .models import db

payment_info = models.PaymentInfo.__table__
oms_order = models.Order.__table__
oms_order_item = models.OrderItem.__table__
wms_ware_sku = models.WareSku.__table__
wms_stock_lock = models.StockLock.__table__
ums_member = models.Member.__table__
ums_points_ledger = models.PointsLedger.__table__
outbox_event = models.OutboxEvent.__table__
payment_notification = models.PaymentNotification.__table__
fulfilment_trace = models.FulfilmentTrace.__table__

#: ums_points_ledger.kind of the points an order earns on payment.
AWARD = "award"

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
    dialect = session.get_bind().dialect.name
    try:
        statement = _INSERT_IGNORING_DUPLICATES[dialect](table)
    except KeyError:
        raise NotImplementedError(f"no insert-ignoring-duplicates for {dialect}") from None
    return session.execute(statement.values(values)).rowcount == 1


def _money(value: Decimal) -> Decimal:
    """Columns keep four places (the seed's DECIMAL(18,4)); the domain counts in cents."""
    return value.quantize(CENT)


def _changed_one(session, statement) -> bool:
    return session.execute(statement).rowcount == 1


def _update_one(session, statement, what: str) -> None:
    """Run an UPDATE that must hit exactly one row; a missing row is a bug, not a no-op."""
    if not _changed_one(session, statement):
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
    )


class SqlUnitOfWork(UnitOfWork):
    """A transaction on the current app context's ``db.session``.

    Units of work in one app context share that session: do not nest them, since the
    inner one's rollback would discard the outer one's changes.
    """

    def __init__(self, clock=datetime.now):
        self.session = db.session
        self.clock = clock
        self.payments = _PaymentView(self)
        self.orders = _OrderView(self)
        self.stock = _StockView(self)
        self.points = _PointsView(self)
        self.outbox = _OutboxView(self)
        self.notifications = _NotificationView(self)
        self.trace = _TraceView(self)

    def commit(self):
        self.session.commit()

    def rollback(self):
        self.session.rollback()


class _View:
    def __init__(self, uow: SqlUnitOfWork):
        self.uow = uow
        self.session = uow.session


class _PaymentView(_View, PaymentStore):
    def _one(self, *where) -> Payment | None:
        row = self.session.execute(select(payment_info).where(*where)).first()
        return None if row is None else _payment(row)

    def find(self, order_sn, payment_type):
        return self._one(payment_info.c.order_sn == order_sn, payment_info.c.payment_type == payment_type)

    def by_trade(self, payment_type, out_trade_no):
        return self._one(payment_info.c.payment_type == payment_type, payment_info.c.out_trade_no == out_trade_no)

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

    def move(self, payment_id, from_status, to_status, *, trade_no=None, callback_time=None, callback_content=None):
        return _changed_one(
            self.session,
            update(payment_info)
            .where(payment_info.c.id == payment_id, payment_info.c.payment_status == int(from_status))
            .values(
                payment_status=int(to_status),
                trade_no=trade_no,
                callback_time=callback_time,
                callback_content=callback_content,
            ),
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
        )

    def move(self, order_sn, from_status, to_status):
        return _changed_one(
            self.session,
            update(oms_order)
            .where(oms_order.c.order_sn == order_sn, oms_order.c.status == int(from_status))
            .values(status=int(to_status)),
        )


class _StockView(_View, StockStore):
    def locks_for(self, order_sn):
        rows = self.session.execute(
            select(wms_stock_lock).where(wms_stock_lock.c.order_sn == order_sn).order_by(wms_stock_lock.c.id)
        )
        return [StockLock(r.id, r.order_sn, r.sku_id, r.quantity, LockStatus(r.status)) for r in rows]

    def move_lock(self, lock_id, from_status, to_status):
        return _changed_one(
            self.session,
            update(wms_stock_lock)
            .where(wms_stock_lock.c.id == lock_id, wms_stock_lock.c.status == int(from_status))
            .values(status=int(to_status)),
        )

    def deduct(self, sku_id, quantity):
        c = wms_ware_sku.c
        _update_one(
            self.session,
            update(wms_ware_sku)
            .where(c.sku_id == sku_id)
            .values(stock=c.stock - quantity, stock_locked=c.stock_locked - quantity, sales=c.sales + quantity),
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
    def claim(self, order_sn, member_id, integration, growth):
        return insert_ignoring_duplicates(
            self.session,
            ums_points_ledger,
            {
                "order_sn": order_sn,
                "kind": AWARD,
                "member_id": member_id,
                "integration": integration,
                "growth": growth,
                "create_time": self.uow.clock(),
            },
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
    def add(self, event):
        result = self.session.execute(
            insert(outbox_event).values(
                name=event.name,
                order_sn=event.order_sn,
                payload=json.dumps(event.payload(), ensure_ascii=False),
                create_time=self.uow.clock(),
            )
        )
        return result.inserted_primary_key[0]

    def _messages(self, *where, limit):
        rows = self.session.execute(select(outbox_event).where(*where).order_by(outbox_event.c.id).limit(limit))
        return [OutboxMessage(r.id, Event(**json.loads(r.payload)), r.create_time, r.sent_time) for r in rows]

    def unsent(self, limit, ids=None):
        c = outbox_event.c
        return self._messages(c.sent_time.is_(None), *([] if ids is None else [c.id.in_(list(ids))]), limit=limit)

    def mark_sent(self, ids, at):
        self.session.execute(update(outbox_event).where(outbox_event.c.id.in_(list(ids))).values(sent_time=at))

    def unsettled(self, sent_before, limit):
        c = outbox_event.c
        return self._messages(c.settled_time.is_(None), c.sent_time < sent_before, limit=limit)

    def settle(self, ids, at):
        self.session.execute(update(outbox_event).where(outbox_event.c.id.in_(list(ids))).values(settled_time=at))


class _TraceView(_View, FulfilmentTrace):
    def record(self, order_sn, step, outcome, detail=""):
        self.session.execute(
            insert(fulfilment_trace).values(
                order_sn=order_sn, step=step, outcome=outcome, detail=detail[:DETAIL_LENGTH], at=self.uow.clock()
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
    )


class _NotificationView(_View, NotificationLog):
    def add(self, record):
        values = asdict(record)
        del values["id"]
        result = self.session.execute(insert(payment_notification).values(values))
        return replace(record, id=result.inserted_primary_key[0])

    def get(self, record_id):
        row = self.session.execute(select(payment_notification).where(payment_notification.c.id == record_id)).first()
        return None if row is None else _notification(row)

    def accepted(self, provider, notify_id):
        c = payment_notification.c
        row = self.session.execute(
            select(payment_notification)
            .where(c.provider == provider, c.notify_id == notify_id, c.accepted.is_(True))
            .order_by(c.id)
            .limit(1)
        ).first()
        return None if row is None else _notification(row)

    def recent(self, limit, provider=None):
        c = payment_notification.c
        query = select(payment_notification).order_by(c.id.desc()).limit(limit)
        if provider is not None:
            query = query.where(c.provider == provider)
        return [_notification(row) for row in self.session.execute(query)]
