"""The flash sale's tables and stores on Flask-SQLAlchemy's ``db``.

Import this module before ``db.create_all()`` for its tables to be made. Every store call
is one transaction on the app context's ``db.session``: do not call one inside a unit of
work, whose transaction it would commit.
"""

import contextlib
import itertools
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

from ...core.model import DEAD_ORDER_STATUSES, OrderStatus
from ...core.seckill import (
    Creation,
    InvalidSale,
    Reservation,
    Sale,
    SeckillOrder,
    SeckillOrderRecord,
    SeckillOrderStatus,
)
from ...ports.seckill import SaleStore, SeckillOrders
from .models import Id, Money, Timestamp, db
from .orders import insert_orders
from .store import changed_one, compare_and_set, insert_ignoring_duplicates, oms_order, wms_ware_sku


class SeckillSale(db.Model):
    __tablename__ = "sms_seckill_sale"
    __table_args__ = (
        Index("ix_seckill_sale_end", "end_time"),
    )  # the sales not over yet, without those that are

    id = db.Column(Id, primary_key=True, autoincrement=True)
    sku_id = db.Column(Id, nullable=False, index=True)
    title = db.Column(String(200), nullable=False)
    price = db.Column(Money, nullable=False)
    units = db.Column(Integer, nullable=False)
    start_time = db.Column(Timestamp, nullable=False)
    end_time = db.Column(Timestamp, nullable=False)
    sold = db.Column(
        Integer,
        nullable=False,
        server_default="0",
        comment="units its orders hold: taken with the orders, never past units",
    )
    gate_generation = db.Column(
        Integer,
        nullable=False,
        server_default="0",
        comment="the gate load of the sale: orders of reservations of another are refused",
    )


class SeckillOrderRow(db.Model):
    """What became of each reservation. ``holding`` is 1 while the order holds its unit and
    NULL after: the unique key then allows one holding order per member and sale, and any
    number of closed ones (NULLs never collide), so a member whose order expired buys again."""

    __tablename__ = "sms_seckill_order"
    __table_args__ = (
        UniqueConstraint("sale_id", "member_id", "holding", name="uq_seckill_sale_member_holding"),
        Index("ix_seckill_order_status", "status", "expires_at"),
        Index("ix_seckill_order_unreturned", "status", "returned_time"),
    )

    id = db.Column(Id, primary_key=True, autoincrement=True)
    order_sn = db.Column(String(64), nullable=False, unique=True)
    sale_id = db.Column(
        Id, nullable=False
    )  # no foreign key: a reservation of an unknown sale is recorded abandoned
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
CLOSED = sorted(int(status) for status in DEAD_ORDER_STATUSES)


def _holding(status: SeckillOrderStatus) -> int | None:
    """A reservation holds its member's place in the sale (the unique key) only while created."""
    return HOLDING if status == SeckillOrderStatus.CREATED else None


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
    return Sale(
        id=row.id,
        sku_id=row.sku_id,
        title=row.title,
        price=row.price,
        units=row.units,
        start=row.start_time,
        end=row.end_time,
        generation=row.gate_generation,
    )


def _reservation(row) -> Reservation:
    return Reservation(row.order_sn, row.member_id, row.sku_id, row.sale_id, row.reserved_time)


def _row(
    reservation: Reservation,
    status: SeckillOrderStatus,
    expires_at: datetime | None,
    returned_at: datetime | None = None,
) -> dict:
    return {
        "order_sn": reservation.order_sn,
        "sale_id": reservation.sale_id,
        "member_id": reservation.member_id,
        "sku_id": reservation.sku_id,
        "status": int(status),
        "holding": _holding(status),
        "reserved_time": reservation.reserved_at,
        "expires_at": expires_at,
        "returned_time": returned_at,
    }


def _take_units(session, orders: list[SeckillOrder]) -> list[SeckillOrder]:
    """Count ``orders`` as sold, by sale and gate generation, as far as the sales' units go and
    only at each sale's generation; the orders that got a unit, in their order (the first
    reserved first)."""
    taken = []
    for (sale_id, generation), group in itertools.groupby(
        orders, key=lambda o: (o.reservation.sale_id, o.reservation.generation)
    ):
        group = list(group)
        fit = (
            len(group)
            if _sell(session, sale_id, generation, len(group))
            else _left(session, sale_id, generation)
        )
        if fit < len(group) and fit and not _sell(session, sale_id, generation, fit):
            raise RuntimeError(f"sale {sale_id}: {fit} units left under its lock, yet not taken")
        taken += group[:fit]
    return taken


def _sell(session, sale_id: int, generation: int, units: int) -> bool:
    """The guard: ``sold`` goes up by ``units`` only within the sale's units, at its generation."""
    s = sale_table.c
    return changed_one(
        session,
        update(sale_table)
        .where(s.id == sale_id, s.gate_generation == generation, s.sold + units <= s.units)
        .values(sold=s.sold + units),
    )


def _left(session, sale_id: int, generation: int) -> int:
    """Units the sale has left at ``generation`` (none at another), its row locked until the commit."""
    s = sale_table.c
    row = session.execute(
        select(s.units, s.sold, s.gate_generation).where(s.id == sale_id).with_for_update()
    ).first()
    return 0 if row is None or row.gate_generation != generation else max(0, row.units - row.sold)


class SqlSales(SaleStore):
    def add(self, sale):
        with _transaction() as session:
            if (
                session.scalar(
                    select(func.count()).select_from(wms_ware_sku).where(wms_ware_sku.c.sku_id == sale.sku_id)
                )
                == 0
            ):
                raise InvalidSale(
                    f"SKU {sale.sku_id} has no stock row (wms_ware_sku): its orders could not lock a unit"
                )
            result = session.execute(
                insert(sale_table).values(
                    sku_id=sale.sku_id,
                    title=sale.title,
                    price=sale.price,
                    units=sale.units,
                    start_time=sale.start,
                    end_time=sale.end,
                )
            )
        return replace(sale, id=result.inserted_primary_key[0])

    def get(self, sale_id):
        with _transaction() as session:
            row = session.execute(select(sale_table).where(sale_table.c.id == sale_id)).first()
        return None if row is None else _sale(row)

    def overlapping(self, start, end):
        c = sale_table.c
        with _transaction() as session:
            rows = session.execute(
                select(sale_table).where(c.start_time < end, c.end_time > start).order_by(c.start_time, c.id)
            ).all()
        return [_sale(row) for row in rows]


class SqlSeckillOrders(SeckillOrders):
    """``clock`` stamps the orders' create_time."""

    def __init__(self, clock=datetime.now):
        self.clock = clock

    def create(self, orders):
        with _transaction() as session:
            reservations = [o.reservation for o in orders]
            c = link.c
            settled = set(
                session.scalars(select(c.order_sn).where(c.order_sn.in_([r.order_sn for r in reservations])))
            )
            holding = {
                (row.sale_id, row.member_id)
                for row in session.execute(
                    select(c.sale_id, c.member_id).where(
                        c.holding == HOLDING,
                        c.sale_id.in_({r.sale_id for r in reservations}),
                        c.member_id.in_({r.member_id for r in reservations}),
                    )
                )
            }
            results, fresh = {}, []
            for seckill_order in orders:
                reservation = seckill_order.reservation
                key = (reservation.sale_id, reservation.member_id)
                if reservation.order_sn in settled:
                    results[reservation.order_sn] = Creation.EXISTS
                elif key in holding:
                    results[reservation.order_sn] = Creation.CONFLICT
                else:  # refused unless it gets a unit
                    holding.add(key)
                    fresh.append(seckill_order)
                    results[reservation.order_sn] = Creation.REFUSED
            new = _take_units(session, fresh)
            results.update({o.reservation.order_sn: Creation.CREATED for o in new})
            if new:
                # A plain insert: losing a race to another creator raises and rolls back the
                # batch, which the service then retries one by one.
                session.execute(
                    insert(link), [_row(o.reservation, SeckillOrderStatus.CREATED, o.expires_at) for o in new]
                )
                insert_orders(
                    session,
                    [(o.order, [(i.sku_id, i.quantity) for i in o.order.items]) for o in new],
                    self.clock(),
                )
        return results

    def abandon(self, reservation, returned_at=None):
        with _transaction() as session:
            return insert_ignoring_duplicates(
                session, link, _row(reservation, SeckillOrderStatus.ABANDONED, None, returned_at)
            )

    def load(self, sale, into):
        c, s = link.c, sale_table.c
        with _transaction() as session:
            row = session.execute(select(sale_table).where(s.id == sale.id).with_for_update()).first()
            if row is None or row.gate_generation != sale.generation:
                return False
            generation = row.gate_generation + 1
            session.execute(update(sale_table).where(s.id == sale.id).values(gate_generation=generation))
            holders = dict(
                session.execute(
                    select(c.member_id, c.order_sn).where(c.sale_id == sale.id, c.holding == HOLDING)
                ).all()
            )
            return into(replace(_sale(row), generation=generation), row.units - row.sold, holders)

    def get(self, order_sn):
        with _transaction() as session:
            row = session.execute(select(link).where(link.c.order_sn == order_sn)).first()
        return (
            None
            if row is None
            else SeckillOrderRecord(_reservation(row), SeckillOrderStatus(row.status), row.expires_at)
        )

    def held(self, sale_id):
        c = link.c
        with _transaction() as session:
            return session.scalar(
                select(func.count())
                .select_from(link)
                .join(oms_order, oms_order.c.order_sn == c.order_sn)
                .where(c.sale_id == sale_id, c.holding == HOLDING, oms_order.c.status.notin_(CLOSED))
            )

    def due(self, now, limit):
        c = link.c
        with _transaction() as session:
            return list(
                session.scalars(
                    select(c.order_sn)
                    .join(oms_order, oms_order.c.order_sn == c.order_sn)
                    .where(
                        c.status == int(SeckillOrderStatus.CREATED),
                        c.expires_at <= now,
                        oms_order.c.status == int(OrderStatus.AWAITING_PAYMENT),
                    )
                    .order_by(c.expires_at, c.id)
                    .limit(limit)
                )
            )

    def _move(self, order_sn, from_status, to_status):
        c = link.c
        closed = exists().where(oms_order.c.order_sn == order_sn, oms_order.c.status.in_(CLOSED))
        with _transaction() as session:
            sale_id = session.scalar(select(c.sale_id).where(c.order_sn == order_sn))
            # The sale's row first, as ``create`` takes it, then the reservation's.
            session.execute(select(sale_table.c.id).where(sale_table.c.id == sale_id).with_for_update())
            released = compare_and_set(
                session,
                link,
                ("order_sn", order_sn),
                "status",
                from_status,
                closed,
                status=int(to_status),
                holding=_holding(to_status),
            )
            row = session.execute(select(link).where(c.order_sn == order_sn)).first() if released else None
            if row is not None and _holding(to_status) is None:  # its unit is free again
                session.execute(
                    update(sale_table).where(sale_table.c.id == sale_id).values(sold=sale_table.c.sold - 1)
                )
        return None if row is None else _reservation(row)

    def unreturned(self, limit):
        c = link.c
        with _transaction() as session:
            rows = session.execute(
                select(link)
                .where(
                    c.status.in_([int(SeckillOrderStatus.CLOSED), int(SeckillOrderStatus.ABANDONED)]),
                    c.returned_time.is_(None),
                )
                .order_by(c.id)
                .limit(limit)
            )
            return [_reservation(row) for row in rows]

    def mark_returned(self, order_sn, at):
        c = link.c
        with _transaction() as session:
            session.execute(
                update(link).where(c.order_sn == order_sn, c.returned_time.is_(None)).values(returned_time=at)
            )
