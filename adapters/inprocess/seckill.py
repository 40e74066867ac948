"""The flash sale's ports in one process: the embedded shop's default and the contract's
reference. Each object keeps its state behind one lock, so every call is atomic, as the
Redis scripts and SQL transactions are."""

import itertools
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime

from ...core.model import DEAD_ORDER_STATUSES, OrderStatus
from ...core.seckill import (
    UNLIMITED,
    Click,
    ClickLimits,
    Creation,
    InvalidSale,
    Outcome,
    Reservation,
    Sale,
    SeckillOrderRecord,
    SeckillOrderStatus,
)
from ...ports.messaging import Latch
from ...ports.seckill import ReservationGate, SaleStore, SeckillOrders
from .store import InMemoryDatabase


@dataclass
class _Loaded:
    """One SKU's sale in the gate, as the Redis keys of its hash tag hold it."""

    sale_id: int
    start: datetime
    end: datetime
    units: int
    generation: int = 0
    buyers: dict = field(default_factory=dict)  # member_id -> order_sn
    waiting: dict = field(default_factory=dict)  # receipt -> Reservation, never handed out
    handed: dict = field(default_factory=dict)  # receipt -> (Reservation, handed out at)


#: Rate-limit counters kept before those whose window ended are dropped.
_COUNTERS_KEPT = 10_000


class InProcessReservationGate(ReservationGate):
    """``clock`` measures how long a reservation was handed out and the rate limits' windows
    (seconds, monotonic). There are no consumers to tell apart: any ``take`` reclaims what
    waited long enough."""

    def __init__(self, clock=time.monotonic, limits: ClickLimits = UNLIMITED):
        self._clock = clock
        self.limits = limits
        self._lock = threading.Lock()
        self._skus: dict[int, _Loaded] = {}
        self._receipts = itertools.count(1)
        self._clicks: dict[
            tuple, tuple[int, float]
        ] = {}  # (sku, kind, who, seconds) -> (clicks, window ends)

    def preheat(self, sale, units, buyers=None):
        with self._lock:
            loaded = self._skus.get(sale.sku_id)
            if loaded is None or (loaded.sale_id == sale.id and loaded.generation != sale.generation):
                self._skus[sale.sku_id] = _Loaded(
                    sale.id, sale.start, sale.end, units, sale.generation, dict(buyers or {})
                )
                return True
        if loaded.sale_id != sale.id:
            raise InvalidSale(f"SKU {sale.sku_id} holds sale {loaded.sale_id}: unload it first")
        return False

    def generation(self, sku_id, sale_id):
        with self._lock:
            loaded = self._skus.get(sku_id)
            return loaded.generation if loaded is not None and loaded.sale_id == sale_id else None

    def unload(self, sku_id, sale_id):
        with self._lock:
            loaded = self._skus.get(sku_id)
            if loaded is None or loaded.sale_id != sale_id or loaded.waiting or loaded.handed:
                return False
            del self._skus[sku_id]
            return True

    def reserve(self, sku_id, member_id, order_sn, now, ip):
        with self._lock:
            loaded = self._skus.get(sku_id)
            if loaded is not None and loaded.buyers.get(member_id) == order_sn:  # the same click again
                return Click(Outcome.RESERVED, order_sn)
            wait = self._count_click(sku_id, member_id, ip)
            if wait:
                return Click.rate_limited(wait)
            loaded = self._skus.get(sku_id)
            if loaded is None:
                return Click(Outcome.NOT_ON_SALE)
            if now < loaded.start:
                return Click(Outcome.NOT_STARTED)
            if now >= loaded.end:
                return Click(Outcome.ENDED)
            if member_id in loaded.buyers:
                return Click(Outcome.ALREADY_BOUGHT, loaded.buyers[member_id])
            if loaded.units <= 0:
                return Click(Outcome.SOLD_OUT)
            receipt = str(next(self._receipts))
            loaded.waiting[receipt] = Reservation(
                order_sn, member_id, sku_id, loaded.sale_id, now, receipt, generation=loaded.generation
            )
            loaded.buyers[member_id] = order_sn
            loaded.units -= 1
            return Click(Outcome.RESERVED, order_sn)

    def _count_click(self, sku_id, member_id, ip) -> float:
        """Count the click against every limit, as the Redis script does; the seconds until
        the latest breached limit's window ends, or 0."""
        now = self._clock()
        if len(self._clicks) > _COUNTERS_KEPT:
            self._clicks = {key: value for key, value in self._clicks.items() if value[1] > now}
        wait = 0.0
        for kind, who, limits in (("member", member_id, self.limits.member), ("ip", ip, self.limits.ip)):
            for limit in limits:
                key = (sku_id, kind, who, limit.seconds)
                clicks, ends = self._clicks.get(key, (0, now))
                if ends <= now:
                    clicks, ends = 0, now + limit.seconds
                self._clicks[key] = (clicks + 1, ends)
                if clicks + 1 > limit.amount:
                    wait = max(wait, ends - now)
        return wait

    def give_back(self, sku_id, member_id, order_sn, unit=True):
        with self._lock:
            loaded = self._skus.get(sku_id)
            if loaded is None or loaded.buyers.get(member_id) != order_sn:
                return False
            del loaded.buyers[member_id]
            loaded.units += unit
            return True

    def held(self, sku_id, member_id):
        with self._lock:
            loaded = self._skus.get(sku_id)
            return None if loaded is None else loaded.buyers.get(member_id)

    def take(self, sku_id, consumer, count, claim_after):
        with self._lock:
            loaded = self._skus.get(sku_id)
            if loaded is None:
                return []
            now = self._clock()
            stale = [receipt for receipt, (_, at) in loaded.handed.items() if now - at >= claim_after]
            taken = [
                replace(loaded.handed[receipt][0], deliveries=loaded.handed[receipt][0].deliveries + 1)
                for receipt in sorted(stale, key=int)[:count]
            ]
            while len(taken) < count and loaded.waiting:
                taken.append(loaded.waiting.pop(next(iter(loaded.waiting))))
            for reservation in taken:
                loaded.handed[reservation.receipt] = (reservation, now)
            return taken

    def ack(self, sku_id, reservations):
        with self._lock:
            loaded = self._skus.get(sku_id)
            if loaded is None:
                return
            for reservation in reservations:
                loaded.handed.pop(reservation.receipt, None)

    def units_left(self, sku_id):
        with self._lock:
            loaded = self._skus.get(sku_id)
            return None if loaded is None else loaded.units


class InProcessLatch(Latch):
    """One ``threading.Event`` per key, kept for the life of the process."""

    def __init__(self):
        self._events = defaultdict(threading.Event)
        self._lock = threading.Lock()

    def _event(self, key):
        with self._lock:
            return self._events[key]

    def open(self, *keys):
        for key in keys:
            self._event(key).set()

    def wait(self, key, timeout):
        return self._event(key).wait(max(timeout, 0))


class InMemorySales(SaleStore):
    def __init__(self, db: InMemoryDatabase):
        self.db = db
        self._sales: dict[int, Sale] = db.tables.seckill_sales

    def add(self, sale):
        with self.db.lock:
            if sale.sku_id not in self.db.tables.skus:
                raise InvalidSale(
                    f"SKU {sale.sku_id} has no stock row (wms_ware_sku): its orders could not lock a unit"
                )
            stored = replace(sale, id=self.db.next_id())
            self._sales[stored.id] = stored
            return stored

    def get(self, sale_id):
        with self.db.lock:
            return self._sales.get(sale_id)

    def overlapping(self, start, end):
        with self.db.lock:
            return sorted(
                (s for s in self._sales.values() if s.start < end and start < s.end), key=lambda s: s.start
            )


def _bare(reservation: Reservation) -> Reservation:
    """The reservation as a store keeps it: without the gate's delivery details."""
    return replace(reservation, receipt="", deliveries=1, generation=0)


@dataclass
class _Link:
    """A row of sms_seckill_order."""

    reservation: Reservation
    status: SeckillOrderStatus
    expires_at: datetime | None = None
    returned_at: datetime | None = None


class InMemorySeckillOrders(SeckillOrders):
    """Seckill orders in the in-process database, under its lock, so that orders, stock
    locks and SKUs change together as in one SQL transaction."""

    def __init__(self, db: InMemoryDatabase):
        self.db = db
        self._links: dict[str, _Link] = {}  # order_sn -> link
        self._holding: dict[tuple[int, int], str] = {}  # (sale_id, member_id) -> order_sn

    def create(self, orders):
        with self.db.lock:
            missing = {item.sku_id for o in orders for item in o.order.items} - self.db.tables.skus.keys()
            if missing:  # checked first: a failed call changes nothing
                raise LookupError(f"no such sku {sorted(missing)}")
            results = {}
            for seckill_order in orders:
                reservation, order = seckill_order.reservation, seckill_order.order
                key = (reservation.sale_id, reservation.member_id)
                if reservation.order_sn in self._links:
                    results[reservation.order_sn] = Creation.EXISTS
                elif key in self._holding:
                    results[reservation.order_sn] = Creation.CONFLICT
                elif not self._sell(reservation):
                    results[reservation.order_sn] = Creation.REFUSED
                else:
                    self.db.add_order(order, [(item.sku_id, item.quantity) for item in order.items])
                    self._links[order.order_sn] = _Link(
                        _bare(reservation), SeckillOrderStatus.CREATED, seckill_order.expires_at
                    )
                    self._holding[key] = order.order_sn
                    results[order.order_sn] = Creation.CREATED
            return results

    def _sell(self, reservation: Reservation) -> bool:
        """Take a unit of the reservation's sale, as the SQL store's guard does."""
        sale = self.db.tables.seckill_sales.get(reservation.sale_id)
        sold = self.db.tables.seckill_sold.get(reservation.sale_id, 0)
        if sale is None or sale.generation != reservation.generation or sold >= sale.units:
            return False
        self.db.tables.seckill_sold[reservation.sale_id] = sold + 1
        return True

    def abandon(self, reservation, returned_at=None):
        with self.db.lock:
            if reservation.order_sn in self._links:
                return False
            self._links[reservation.order_sn] = _Link(
                _bare(reservation), SeckillOrderStatus.ABANDONED, returned_at=returned_at
            )
            return True

    def load(self, sale, into):
        with self.db.lock:
            stored = self.db.tables.seckill_sales.get(sale.id)
            if stored is None or stored.generation != sale.generation:
                return False
            loaded = replace(stored, generation=stored.generation + 1)
            holders = {member: sn for (of, member), sn in self._holding.items() if of == sale.id}
            answer = into(loaded, loaded.units - self.db.tables.seckill_sold.get(sale.id, 0), holders)
            self.db.tables.seckill_sales[sale.id] = loaded  # only once ``into`` did not raise
            return answer

    def get(self, order_sn):
        with self.db.lock:
            link = self._links.get(order_sn)
            return (
                None if link is None else SeckillOrderRecord(link.reservation, link.status, link.expires_at)
            )

    def held(self, sale_id):
        with self.db.lock:
            return sum(
                1
                for (sale, _), sn in self._holding.items()
                if sale == sale_id and self.db.tables.orders[sn].status not in DEAD_ORDER_STATUSES
            )

    def due(self, now, limit):
        with self.db.lock:
            due = [
                link
                for sn, link in self._links.items()
                if link.status == SeckillOrderStatus.CREATED
                and link.expires_at <= now
                and self.db.tables.orders[sn].status == OrderStatus.AWAITING_PAYMENT
            ]
            return [
                link.reservation.order_sn for link in sorted(due, key=lambda link: link.expires_at)[:limit]
            ]

    def _move(self, order_sn, from_status, to_status):
        with self.db.lock:
            link = self._links.get(order_sn)
            if (
                link is None
                or link.status != from_status
                or self.db.tables.orders[order_sn].status not in DEAD_ORDER_STATUSES
            ):
                return None
            link.status = to_status
            if to_status != SeckillOrderStatus.CREATED:  # it no longer holds its member's place, nor a unit
                del self._holding[(link.reservation.sale_id, link.reservation.member_id)]
                self.db.tables.seckill_sold[link.reservation.sale_id] -= 1
            return link.reservation

    def unreturned(self, limit):
        with self.db.lock:
            return [
                link.reservation
                for link in self._links.values()
                if link.status != SeckillOrderStatus.CREATED and link.returned_at is None
            ][:limit]

    def mark_returned(self, order_sn, at):
        with self.db.lock:
            link = self._links.get(order_sn)
            if link is not None and link.returned_at is None:
                link.returned_at = at
