"""The flash sale (秒杀): one atomic reservation per click, orders made in the background,
a bounded wait for them, and units given back when an order is never made or never paid."""

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from ..core import events
from ..core.closing import OrderClosing
from ..core.fulfilment import DONE, SKIPPED
from ..core.model import Order, OrderItem, OrderStatus
from ..core.money import points_for
from ..core.ordersn import new_order_sn
from ..core.seckill import (
    Click,
    Creation,
    InvalidSale,
    Reservation,
    ReservationState,
    Sale,
    SeckillOrder,
    SeckillOrderRecord,
    SeckillOrderStatus,
)
from ..ports.messaging import Latch
from ..ports.seckill import ExpiryScheduler, ReservationGate, SaleStore, SeckillOrders

log = logging.getLogger(__name__)

#: Why the flash sale closes an order (the ``order.closed`` event's reason).
UNPAID = "flash-sale order unpaid in time"
#: Sales that ended this long ago are still drained and unloaded by ``tick``.
AFTERCARE = timedelta(days=1)
#: What a shopper is told of a reservation the order creator settled.
SETTLED = {
    SeckillOrderStatus.CREATED: ReservationState.CREATED,
    SeckillOrderStatus.CLOSED: ReservationState.CLOSED,
    SeckillOrderStatus.ABANDONED: ReservationState.ABANDONED,
}


def created_key(order_sn: str, member_id: int) -> str:
    """The latch opened once the order of ``order_sn`` is settled (made or abandoned). The
    member is part of it: waiting on another member's order number waits as on an unknown one."""
    return f"seckill:created:{member_id}:{order_sn}"


class SeckillService:
    """Sales, clicks, order creation and give-backs.

    ``closing`` closes orders (``core.closing``); ``uow`` records the give-back step in the
    order's trace; ``expiry`` schedules each created order's expiry. ``pay_within``: how long
    a seckill order may wait for payment; ``claim_after``: seconds after which a reservation
    handed to an order creator that never acknowledged it goes to another;
    ``max_deliveries``: attempts to make an order before its unit is given back;
    ``batch``: reservations made into orders per transaction; ``linger``: seconds a drain
    pauses after a batch that was not full, so that a burst's reservations gather into full
    batches instead of costing a transaction each; ``preheat_ahead``: how long before its
    start a sale is loaded into the gate.
    """

    def __init__(
        self,
        gate: ReservationGate,
        sales: SaleStore,
        orders: SeckillOrders,
        latch: Latch,
        closing: OrderClosing,
        uow: Callable,
        expiry: ExpiryScheduler | None = None,
        *,
        clock: Callable[[], datetime] = datetime.now,
        pay_within: timedelta = timedelta(minutes=30),
        claim_after: float = 30.0,
        max_deliveries: int = 5,
        batch: int = 100,
        linger: float = 0.0,
        preheat_ahead: timedelta = timedelta(minutes=5),
    ):
        self.gate = gate
        self.sales = sales
        self.orders = orders
        self.latch = latch
        self.closing = closing
        self.uow = uow
        self.expiry = expiry
        self.clock = clock
        self.pay_within = pay_within
        self.claim_after = claim_after
        self.max_deliveries = max_deliveries
        self.batch = batch
        self.linger = linger
        self.preheat_ahead = preheat_ahead

    # sales

    def create_sale(self, sale: Sale) -> Sale:
        """Store a new sale, refusing one that overlaps another sale of its SKU (the gate
        holds one sale per SKU)."""
        clash = next(
            (s for s in self.sales.overlapping(sale.start, sale.end) if s.sku_id == sale.sku_id), None
        )
        if clash is not None:
            raise InvalidSale(
                f"SKU {sale.sku_id} is on sale {clash.start} .. {clash.end} already (sale {clash.id})"
            )
        return self.sales.add(sale)

    def preheat(self, sale: Sale) -> bool:
        """Load the sale into the gate unless it holds it at the generation the database
        recorded; True if this call did.

        Each load is a new generation, recorded in the transaction that reads what the
        database holds: from then on the database makes no order of a reservation of an
        earlier generation (those in flight when the gate lost the sale are refused and
        abandoned, never sold twice), so the gate gets exactly the units its orders do not
        hold, and as buyers the members who hold them (told "already bought", not sold again).
        """
        if self.gate.generation(sale.sku_id, sale.id) == sale.generation:
            return False
        if sale.generation:
            log.warning(
                "the gate lost sale %s (SKU %s): loading it again from the database", sale.id, sale.sku_id
            )
        return self.orders.load(sale, self.gate.preheat)

    def showcase(self, within: timedelta) -> list[tuple[Sale, int | None]]:
        """Sales open now or starting within ``within``, each with its units left in the gate
        (None: not loaded yet, or lost)."""
        now = self.clock()
        return [
            (sale, self.gate.units_left(sale.sku_id)) for sale in self.sales.overlapping(now, now + within)
        ]

    def tick(self) -> bool:
        """The periodic job: preheat the sales starting within ``preheat_ahead`` (and open
        ones the gate lost), unload those that ended, expire what is due; True while some
        sale has started, so its reservations are to be drained."""
        now = self.clock()
        started = False
        for sale in self.sales.overlapping(now - AFTERCARE, now + self.preheat_ahead):
            if sale.end <= now:
                self.gate.unload(sale.sku_id, sale.id)  # refused while reservations wait: next tick
            else:
                self._preheat_quietly(sale)
            started = started or sale.start <= now
        self.sweep()
        return started

    def _preheat_quietly(self, sale: Sale) -> None:
        try:
            if self.preheat(sale):
                log.info(
                    "sale %s preheated: SKU %s, %s", sale.id, sale.sku_id, self.gate.units_left(sale.sku_id)
                )
        except InvalidSale:  # the SKU's previous sale is still being drained: next tick
            log.warning("sale %s not preheated yet: SKU %s still holds another sale", sale.id, sale.sku_id)

    # clicks

    def click(self, member_id: int, sku_id: int, ip: str, now: datetime | None = None) -> Click:
        """Try to reserve a unit for a member clicking from ``ip``; the order number is made
        first, so the rate limits, the reservation and the hand-off to the order creator are
        one atomic step."""
        now = now or self.clock()
        return self.gate.reserve(sku_id, member_id, new_order_sn(now), now, ip)

    # orders

    def drain(self, consumer: str, budget: float) -> int:
        """Make the orders of every started sale's waiting reservations, batch after batch,
        until none waits or ``budget`` seconds have passed; return how many settled."""
        deadline = time.monotonic() + budget
        settled = 0
        for sku_id in {sale.sku_id for sale in self._started()}:
            while time.monotonic() < deadline and (made := self.create_orders(sku_id, consumer)):
                settled += made
                if made < self.batch:
                    time.sleep(self.linger)
        return settled

    def create_orders(self, sku_id: int, consumer: str) -> int:
        """Make the orders of up to ``batch`` waiting reservations; return how many settled.

        A reservation whose order cannot be made (its sale is unknown, its member holds
        another order of the sale, or it failed ``max_deliveries`` times) is abandoned and
        its unit given back at once; the others that failed come back after ``claim_after``.
        """
        batch = self.gate.take(sku_id, consumer, self.batch, self.claim_after)
        if not batch:
            return 0
        sales = {sale_id: self.sales.get(sale_id) for sale_id in {r.sale_id for r in batch}}
        orders = [self._order(r, sales[r.sale_id]) for r in batch if sales[r.sale_id]]
        results = self._create(orders)
        settled = []
        for reservation in batch:
            result = results.get(reservation.order_sn)
            retry = sales[reservation.sale_id] is not None and reservation.deliveries < self.max_deliveries
            if result is None and retry:
                continue
            if result in (None, Creation.CONFLICT):
                self._abandon(reservation)
            elif result is Creation.REFUSED:
                self._refuse(reservation)
            settled.append(reservation)
        self.gate.ack(sku_id, settled)
        self._schedule_expiry([o for o in orders if results.get(o.order.order_sn) is Creation.CREATED])
        self.latch.open(
            *(created_key(reservation.order_sn, reservation.member_id) for reservation in settled)
        )
        return len(settled)

    def state(self, member_id: int, order_sn: str) -> ReservationState:
        """What the member is told of their reservation ``order_sn``.

        ``LOST`` when nothing holds it: no order recorded, no gate holding it for the member,
        and no open sale whose gate is being loaded again (until then a reservation taken
        before the gate lost its data may still become an order). The gate is asked before
        the database is asked again: every step that frees a member in the gate records the
        reservation in the database first. Another member's number, or a made-up one, is
        told exactly as a lost one."""
        record = self.order_of(member_id, order_sn)
        if record is None:
            now = self.clock()
            for sale in self._started():
                held = self.gate.held(sale.sku_id, member_id)
                if held == order_sn or (held is None and sale.end > now and self._recovering(sale)):
                    return ReservationState.PENDING
            record = self.order_of(member_id, order_sn)
        return ReservationState.LOST if record is None else SETTLED[record.status]

    def _recovering(self, sale: Sale) -> bool:
        """The open sale is not in the gate: lost (the tick loads it again) or not loaded yet."""
        return self.gate.generation(sale.sku_id, sale.id) is None

    def _started(self) -> list[Sale]:
        """Sales of the last day that have started: their reservations may still be waiting."""
        now = self.clock()
        return [sale for sale in self.sales.overlapping(now - AFTERCARE, now) if sale.start <= now]

    def order(self, order_sn: str) -> SeckillOrderRecord | None:
        """What became of a reservation (None: its order is not made yet)."""
        return self.orders.get(order_sn)

    def order_of(self, member_id: int, order_sn: str) -> SeckillOrderRecord | None:
        """What became of the member's reservation; None for another member's, as for one
        whose order is not made yet (nothing tells whether another member's number exists)."""
        record = self.orders.get(order_sn)
        return record if record is not None and record.reservation.member_id == member_id else None

    def wait_for_order(self, order_sn: str, member_id: int, timeout: float) -> bool:
        """Whether the member's order exists, waiting at most ``timeout`` seconds for it
        (the whole bound for another member's order, as for an unknown number)."""
        if self._created(order_sn, member_id):
            return True
        self.latch.wait(created_key(order_sn, member_id), timeout)
        return self._created(order_sn, member_id)

    def _created(self, order_sn: str, member_id: int) -> bool:
        record = self.order_of(member_id, order_sn)
        return record is not None and record.status is not SeckillOrderStatus.ABANDONED

    # expiry and give-back

    def expire(self, order_sn: str) -> bool:
        """Close the order if it is a flash-sale order still unpaid past its time; True if
        this call closed it. Its unit comes back through ``order.closed`` (``give_back``)."""
        record = self.orders.get(order_sn)
        if (
            record is None
            or record.status is not SeckillOrderStatus.CREATED
            or record.expires_at > self.clock()
        ):
            return False
        return self.closing.close(order_sn, UNPAID)

    def give_back(self, order_sn: str) -> bool:
        """The ``GIVE_BACK_SECKILL_UNIT`` step of ``order.closed``, whoever closed the order: record the
        reservation closed, return its unit to the gate and free its member; True if this
        call returned the unit (it comes back once per order, however often this runs)."""
        self.orders.release(order_sn)
        record = self.orders.get(order_sn)
        if record is None:
            outcome, detail, returned = SKIPPED, "not a flash-sale order", False
        elif record.status is not SeckillOrderStatus.CLOSED:
            outcome, detail, returned = SKIPPED, f"its reservation is {record.status.name.lower()}", False
        else:
            returned = self._give_back(record.reservation)
            outcome, detail = (
                (
                    DONE,
                    f"unit of SKU {record.reservation.sku_id} returned, member "
                    f"{record.reservation.member_id} may buy again",
                )
                if returned
                else (SKIPPED, "its unit was returned already")
            )
        with self.uow() as uow:
            uow.trace.record(order_sn, events.GIVE_BACK_SECKILL_UNIT, outcome, detail)
            uow.commit()
        return returned

    def sweep(self, limit: int = 100) -> int:
        """Expire what is due (what a lost expiry message left), and finish give-backs that a
        crash interrupted; return how many orders were closed."""
        closed = sum(self.expire(order_sn) for order_sn in self.orders.due(self.clock(), limit))
        for reservation in self.orders.unreturned(limit):
            self._give_back(reservation)
        return closed

    def _order(self, reservation: Reservation, sale: Sale) -> SeckillOrder:
        points = points_for(sale.price)
        order = Order(
            order_sn=reservation.order_sn,
            member_id=reservation.member_id,
            status=OrderStatus.AWAITING_PAYMENT,
            pay_amount=sale.price,
            integration=points,
            growth=points,
            items=[OrderItem(sale.sku_id, sale.title, 1, sale.price)],
        )
        return SeckillOrder(reservation, order, reservation.reserved_at + self.pay_within)

    def _create(self, orders: Sequence[SeckillOrder]) -> dict:
        """All in one transaction; if that fails, one by one, so one bad order does not
        hold up the rest."""
        if not orders:
            return {}
        try:
            return self.orders.create(orders)
        except Exception:
            if len(orders) == 1:
                log.exception("seckill order %s not made", orders[0].order.order_sn)
                return {}
            log.warning("%d seckill orders not made at once; one by one now", len(orders), exc_info=True)
        results = {}
        for order in orders:
            results.update(self._create([order]))
        return results

    def _schedule_expiry(self, created: Sequence[SeckillOrder]) -> None:
        """One delayed expiry for the batch, at its last order's time; if the schedule
        refuses it, the sweep expires them instead."""
        if not created or self.expiry is None:
            return
        try:
            self.expiry.schedule([o.order.order_sn for o in created], max(o.expires_at for o in created))
        except Exception:
            log.warning(
                "expiry of %d seckill orders not scheduled; the sweep will expire them",
                len(created),
                exc_info=True,
            )

    def _abandon(self, reservation: Reservation) -> None:
        if self.orders.abandon(reservation):
            log.warning("seckill order %s abandoned; its unit goes back", reservation.order_sn)
            self._give_back(reservation)

    def _refuse(self, reservation: Reservation) -> None:
        """The database had no unit for it: abandoned, and its member freed, with no unit to return."""
        if self.orders.abandon(reservation, returned_at=self.clock()):
            log.warning("seckill order %s refused by the database: no unit left for it", reservation.order_sn)
            self.gate.give_back(reservation.sku_id, reservation.member_id, reservation.order_sn, unit=False)

    def _give_back(self, reservation: Reservation) -> bool:
        """Return the unit (at most once: the gate checks the member still holds this order),
        then record it, so the sweep retries a give-back a crash interrupted."""
        returned = self.gate.give_back(reservation.sku_id, reservation.member_id, reservation.order_sn)
        self.orders.mark_returned(reservation.order_sn, self.clock())
        return returned
