"""The flash sale (秒杀): one atomic reservation per click, orders made in the background,
a bounded wait for them, and units given back when an order is never made or never paid."""

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from ..core.model import Order, OrderItem, OrderStatus
from ..core.ordersn import new_order_sn
from ..core.seckill import Click, Creation, InvalidSale, Reservation, Sale, SeckillOrder
from ..ports.messaging import Latch
from ..ports.seckill import ReservationGate, SaleStore, SeckillOrders

log = logging.getLogger(__name__)


def created_key(order_sn: str) -> str:
    """The latch opened once the order of ``order_sn`` is settled (made or abandoned)."""
    return f"seckill:created:{order_sn}"


class SeckillService:
    """Sales, clicks, order creation and give-backs.

    ``pay_within``: how long a seckill order may wait for payment; ``claim_after``: seconds
    after which a reservation handed to an order creator that never acknowledged it goes to
    another; ``max_deliveries``: attempts to make an order before its unit is given back.
    """

    def __init__(self, gate: ReservationGate, sales: SaleStore, orders: SeckillOrders, latch: Latch, *,
                 clock: Callable[[], datetime] = datetime.now, pay_within: timedelta = timedelta(minutes=30),
                 claim_after: float = 30.0, max_deliveries: int = 5):
        self.gate = gate
        self.sales = sales
        self.orders = orders
        self.latch = latch
        self.clock = clock
        self.pay_within = pay_within
        self.claim_after = claim_after
        self.max_deliveries = max_deliveries

    def create_sale(self, sale: Sale) -> Sale:
        """Store a new sale, refusing one that overlaps another sale of its SKU (the gate
        holds one sale per SKU)."""
        clash = next((s for s in self.sales.overlapping(sale.start, sale.end) if s.sku_id == sale.sku_id), None)
        if clash is not None:
            raise InvalidSale(f"SKU {sale.sku_id} is on sale {clash.start} .. {clash.end} already (sale {clash.id})")
        return self.sales.add(sale)

    def preheat(self, sale: Sale) -> bool:
        """Load the sale's units into the gate once; True if this call did.

        Units that orders already hold are left out, so preheating again after the gate
        lost the sale (a Redis restart) cannot sell them twice.
        """
        return self.gate.preheat(sale, sale.units - self.orders.held(sale.id))

    def click(self, member_id: int, sku_id: int, now: datetime | None = None) -> Click:
        """Try to reserve a unit; the order number is made first, so the reservation and the
        hand-off to the order creator are one atomic step."""
        now = now or self.clock()
        return self.gate.reserve(sku_id, member_id, new_order_sn(now), now)

    def create_orders(self, sku_id: int, consumer: str, count: int = 100) -> int:
        """Make the orders of up to ``count`` waiting reservations; return how many settled.

        A reservation whose order cannot be made (its sale is unknown, its member holds
        another order of the sale, or it failed ``max_deliveries`` times) is abandoned and
        its unit given back at once; the others that failed come back after ``claim_after``.
        """
        batch = self.gate.take(sku_id, consumer, count, self.claim_after)
        if not batch:
            return 0
        sales = {sale_id: self.sales.get(sale_id) for sale_id in {r.sale_id for r in batch}}
        results = self._create([self._order(r, sales[r.sale_id]) for r in batch if sales[r.sale_id]])
        settled = []
        for reservation in batch:
            result = results.get(reservation.order_sn)
            retry = sales[reservation.sale_id] is not None and reservation.deliveries < self.max_deliveries
            if result is None and retry:
                continue
            if result in (None, Creation.CONFLICT):
                self._abandon(reservation)
            settled.append(reservation)
        self.gate.ack(sku_id, settled)
        for reservation in settled:
            self.latch.open(created_key(reservation.order_sn))
        return len(settled)

    def wait_for_order(self, order_sn: str, timeout: float) -> bool:
        """Whether the order exists, waiting at most ``timeout`` seconds for it."""
        if self.orders.created(order_sn):
            return True
        self.latch.wait(created_key(order_sn), timeout)
        return self.orders.created(order_sn)

    def expire(self, order_sn: str) -> bool:
        """Close the order if it is still unpaid past its time, and give its unit back;
        True if this call closed it."""
        reservation = self.orders.close(order_sn, self.clock())
        if reservation is None:
            return False
        self._give_back(reservation)
        return True

    def sweep(self, limit: int = 100) -> int:
        """Expire what is due, and finish give-backs that a crash interrupted (what a lost
        expiry message would have done); return how many orders were closed."""
        closed = sum(self.expire(order_sn) for order_sn in self.orders.due(self.clock(), limit))
        for reservation in self.orders.unreturned(limit):
            self._give_back(reservation)
        return closed

    def _order(self, reservation: Reservation, sale: Sale) -> SeckillOrder:
        order = Order(
            order_sn=reservation.order_sn,
            member_id=reservation.member_id,
            status=OrderStatus.AWAITING_PAYMENT,
            pay_amount=sale.price,
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

    def _abandon(self, reservation: Reservation) -> None:
        if self.orders.abandon(reservation):
            log.warning("seckill order %s abandoned; its unit goes back", reservation.order_sn)
            self._give_back(reservation)

    def _give_back(self, reservation: Reservation) -> None:
        """Return the unit (at most once: the gate checks the member still holds this order),
        then record it, so the sweep retries a give-back a crash interrupted."""
        self.gate.give_back(reservation.sku_id, reservation.member_id, reservation.order_sn)
        self.orders.mark_returned(reservation.order_sn, self.clock())
