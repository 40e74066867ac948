"""The steps that follow a payment; each runs at least once and takes effect at most once."""

import logging
from collections.abc import Callable

from . import events
from .errors import OrderNotFound, OrderNotPaidYet
from .model import PAID_ORDER_STATUSES, LockStatus, OrderStatus

log = logging.getLogger(__name__)


class FulfilmentService:
    """Mark the order paid, deduct its locked stock, award its points.

    Every method is idempotent: it returns True when this call changed something and
    False when the change had already been made, so a redelivered message is harmless.
    """

    def __init__(self, uow: Callable, after_commit: Callable[[], object] = lambda: None):
        """``after_commit`` runs after a commit that wrote an event (the relay's flush)."""
        self.uow = uow
        self.after_commit = after_commit

    def mark_order_paid(self, order_sn: str) -> bool:
        """Awaiting payment (0) becomes awaiting shipment (1), only if still 0."""
        with self.uow() as uow:
            order = uow.orders.get(order_sn)
            if order is None:
                raise OrderNotFound(order_sn)
            moved = uow.orders.move(order_sn, OrderStatus.AWAITING_PAYMENT, OrderStatus.AWAITING_SHIPMENT)
            if not moved:
                log.info("order %s already left status 0 (now %s)", order_sn, order.status.name)
                return False
            uow.outbox.add(events.order_paid(order_sn))
            uow.commit()
        self.after_commit()
        return True

    def deduct_stock(self, order_sn: str) -> bool:
        """Turn the order's stock locks into shipped units: stock -n, locked -n, sales +n."""
        with self.uow() as uow:
            self._paid_order(uow, order_sn)
            changed = False
            for lock in uow.stock.locks_for(order_sn):
                if uow.stock.move_lock(lock.id, LockStatus.LOCKED, LockStatus.DEDUCTED):
                    uow.stock.deduct(lock.sku_id, lock.quantity)
                    changed = True
            uow.commit()
            return changed

    def run(self, event_name: str, order_sn: str) -> None:
        """Run every step that ``event_name`` triggers (the bus adapters' single entry)."""
        for step in STEPS_BY_EVENT[event_name]:
            getattr(self, step)(order_sn)

    def award_points(self, order_sn: str) -> bool:
        """Credit the member with the order's integration and growth, once per order."""
        with self.uow() as uow:
            order = self._paid_order(uow, order_sn)
            if not uow.points.claim(order_sn, order.member_id, order.integration, order.growth):
                return False
            uow.points.credit(order.member_id, order.integration, order.growth)
            uow.commit()
            return True

    @staticmethod
    def _paid_order(uow, order_sn):
        order = uow.orders.get(order_sn)
        if order is None:
            raise OrderNotFound(order_sn)
        if order.status not in PAID_ORDER_STATUSES:
            raise OrderNotPaidYet(order_sn)
        return order


#: Which fulfilment steps each event triggers; the bus adapters route by this table.
STEPS_BY_EVENT = {
    events.PAYMENT_SUCCEEDED: ("mark_order_paid",),
    events.ORDER_PAID: ("deduct_stock", "award_points"),
}
