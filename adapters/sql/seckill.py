"""The flash sale's tables and stores on Flask-SQLAlchemy's ``db``.

Import this module before ``db.create_all()`` for its tables to be made. Every store call
is one transaction on the app context's ``db.session``: do not call one inside a unit of
work, whose transaction it would commit.
"""

import contextlib
from dataclasses import replace
from datetime import datetime

from sqlalchemy import (
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    exists,
    func,
    insert,
    select,
    update,
)

from ...core.model import OrderStatus
from ...core.seckill import Creation, InvalidSale, Reservation, Sale, SeckillOrderRecord, SeckillOrderStatus
from ...ports.seckill import SaleStore, SeckillOrders
from .models import Id, Money, Timestamp, db
from .orders import insert_orders
from .store import insert_ignoring_duplicates, oms_order, wms_ware_sku


class SeckillSale(db.Model):
    __tablename__ = "sms_seckill_sale"

    id = db.Column(Id, primary_key=True, autoincrement=True)
    sku_id = db.Column(Id, nullable=False, index=True)
    title = db.Column(String(200), nullable=False)
    price = db.Column(Money, nullable=False)
    units = db.Column(Integer, nullable=False)
    start_time = db.Column(Timestamp, nullable=False)
    end_time = db.Column(Timestamp, nullable=False)


class SeckillOrderRow(db.Model):
    """What became of each reservation. ``holding`` is 1 while the order holds its unit and
    NULL after: the unique key then allows one holding order per member and sale, and any
    number of closed ones (NULLs never collide), so a member whose order expired buys again."""

    __tablename__ = "sms_seckill_order"
    __table_args__ = (
        UniqueConstraint("sale_id", "member_id", "holding", name="uq_seckill_sale_member_holding"),
        Index("ix_seckill_order_status", "status", "expires_at"),
    )

    id = db.Column(Id, primary_key=True, autoincrement=True)
    order_sn = db.Column(String(64), nullable=False, unique=True)
    sale_id = db.Column(Id, nullable=False)  # no foreign key: a reservation of an unknown sale is recorded abandoned
    member_id = db.Column(Id, nullable=False)
    sku_id = db.Column(Id, nullable=False)
    status = db.Column(SmallInteger, nullable=False)
    holding = db.Column(SmallInteger)
    reserved_time = db.Column(Timestamp, nullable=False)
    expires_at = db.Column(Timestamp)
    returned_time = db.Column(Timestamp)


sale_table = SeckillSale.__table__
link = SeckillOrderRow.__table__
HOLDING = 1
#: Order statuses in which an order no longer holds its unit.
CLOSED = (int(OrderStatus.CLOSED), int(OrderStatus.INVALID))


@contextlib.contextmanager
def _transaction():
    """The app context's session, committed if the block ends normally, else rolled back."""
    try:
        yield db.session
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def _sale(row) -> Sale:
    return Sale(id=row.id, sku_id=row.sku_id, title=row.title, price=row.price, units=row.units,
                start=row.start_time, end=row.end_time)


def _reservation(row) -> Reservation:
    return Reservation(row.order_sn, row.member_id, row.sku_id, row.sale_id, row.reserved_time)


def _row(reservation: Reservation, status: SeckillOrderStatus, expires_at: datetime | None) -> dict:
    return {
        "order_sn": reservation.order_sn,
        "sale_id": reservation.sale_id,
        "member_id": reservation.member_id,
        "sku_id": reservation.sku_id,
        "status": int(status),
        "holding": HOLDING if status == SeckillOrderStatus.CREATED else None,
        "reserved_time": reservation.reserved_at,
        "expires_at": expires_at,
    }


class SqlSales(SaleStore):
    def add(self, sale):
        with _transaction() as session:
            if session.scalar(select(func.count()).select_from(wms_ware_sku).where(wms_ware_sku.c.sku_id == sale.sku_id)) == 0:
                raise InvalidSale(f"SKU {sale.sku_id} has no stock row (wms_ware_sku): its orders could not lock a unit")
            result = session.execute(insert(sale_table).values(
                sku_id=sale.sku_id, title=sale.title, price=sale.price, units=sale.units,
                start_time=sale.start, end_time=sale.end,
            ))
        return replace(sale, id=result.inserted_primary_key[0])

    def get(self, sale_id):
        with _transaction() as session:
            row = session.execute(select(sale_table).where(sale_table.c.id == sale_id)).first()
        return None if row is None else _sale(row)

    def overlapping(self, start, end):
        c = sale_table.c
        with _transaction() as session:
            rows = session.execute(select(sale_table).where(c.start_time < end, c.end_time > start)
                                   .order_by(c.start_time, c.id)).all()
        return [_sale(row) for row in rows]


class SqlSeckillOrders(SeckillOrders):
    """``clock`` stamps the orders' create_time."""

    def __init__(self, clock=datetime.now):
        self.clock = clock

    def create(self, orders):
        with _transaction() as session:
            reservations = [o.reservation for o in orders]
            c = link.c
            settled = set(session.scalars(select(c.order_sn).where(c.order_sn.in_([r.order_sn for r in reservations]))))
            holding = {(row.sale_id, row.member_id) for row in session.execute(select(c.sale_id, c.member_id).where(
                c.holding == HOLDING,
                c.sale_id.in_({r.sale_id for r in reservations}),
                c.member_id.in_({r.member_id for r in reservations}),
            ))}
            results, new = {}, []
            for seckill_order in orders:
                reservation = seckill_order.reservation
                key = (reservation.sale_id, reservation.member_id)
                if reservation.order_sn in settled:
                    results[reservation.order_sn] = Creation.EXISTS
                elif key in holding:
                    results[reservation.order_sn] = Creation.CONFLICT
                else:
                    holding.add(key)
                    new.append(seckill_order)
                    results[reservation.order_sn] = Creation.CREATED
            if new:
                # A plain insert: losing a race to another creator raises and rolls back the
                # batch, which the service then retries one by one.
                session.execute(insert(link), [_row(o.reservation, SeckillOrderStatus.CREATED, o.expires_at)
                                               for o in new])
                insert_orders(session, [(o.order, [(i.sku_id, i.quantity) for i in o.order.items]) for o in new],
                              self.clock())
        return results

    def abandon(self, reservation):
        with _transaction() as session:
            return insert_ignoring_duplicates(session, link, _row(reservation, SeckillOrderStatus.ABANDONED, None))

    def get(self, order_sn):
        with _transaction() as session:
            row = session.execute(select(link).where(link.c.order_sn == order_sn)).first()
        return None if row is None else SeckillOrderRecord(_reservation(row), SeckillOrderStatus(row.status), row.expires_at)

    def held(self, sale_id):
        c = link.c
        with _transaction() as session:
            return session.scalar(
                select(func.count()).select_from(link).join(oms_order, oms_order.c.order_sn == c.order_sn)
                .where(c.sale_id == sale_id, c.holding == HOLDING, oms_order.c.status.notin_(CLOSED))
            )

    def due(self, now, limit):
        c = link.c
        with _transaction() as session:
            return list(session.scalars(
                select(c.order_sn).join(oms_order, oms_order.c.order_sn == c.order_sn)
                .where(c.status == int(SeckillOrderStatus.CREATED), c.expires_at <= now,
                       oms_order.c.status == int(OrderStatus.AWAITING_PAYMENT))
                .order_by(c.expires_at, c.id).limit(limit)
            ))

    def release(self, order_sn):
        c = link.c
        closed = exists().where(oms_order.c.order_sn == order_sn, oms_order.c.status.in_(CLOSED))
        with _transaction() as session:
            released = session.execute(
                update(link).where(c.order_sn == order_sn, c.status == int(SeckillOrderStatus.CREATED), closed)
                .values(status=int(SeckillOrderStatus.CLOSED), holding=None)
            ).rowcount
            row = session.execute(select(link).where(c.order_sn == order_sn)).first() if released else None
        return None if row is None else _reservation(row)

    def unreturned(self, limit):
        c = link.c
        with _transaction() as session:
            rows = session.execute(select(link).where(
                c.status.in_([int(SeckillOrderStatus.CLOSED), int(SeckillOrderStatus.ABANDONED)]),
                c.returned_time.is_(None),
            ).order_by(c.id).limit(limit))
            return [_reservation(row) for row in rows]

    def mark_returned(self, order_sn, at):
        c = link.c
        with _transaction() as session:
            session.execute(update(link).where(c.order_sn == order_sn, c.returned_time.is_(None))
                            .values(returned_time=at))
