"""The steps that follow a payment; each runs at least once and takes effect at most once."""

import logging
from collections.abc import Callable

from . import events
from .errors import OrderNotFound, OrderNotPaidYet
from .model import PAID_ORDER_STATUSES, LockStatus, OrderStatus

log = logging.getLogger(__name__)

#: Outcomes a step leaves in the fulfilment trace. The service records DONE and SKIPPED in
#: the transaction of the step itself; the bus adapter records FAILED (an attempt raised,
#: it will be retried) and DEAD (the last retry failed: the message was dead-lettered).
DONE, SKIPPED, FAILED, DEAD = "done", "skipped", "failed", "dead"
#: Outcomes after which a step needs nothing more from the machinery (DEAD needs an operator).
SETTLED = frozenset({DONE, SKIPPED, DEAD})


class FulfilmentService:
    """Mark the order paid, deduct its locked stock, award its points.

    Every method is idempotent: it returns True when this call changed something and
    False when the change had already been made, so a redelivered message is harmless.
    """

    def __init__(self, uow: Callable, after_commit: Callable[..., object] = lambda *ids: None):
        """``after_commit(*ids)`` runs after a commit that wrote events, with their outbox ids."""
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
                uow.trace.record(order_sn, "mark_order_paid", SKIPPED, f"status was already {order.status.name}")
                uow.commit()
                return False
            event_id = uow.outbox.add(events.order_paid(order_sn))
            uow.trace.record(order_sn, "mark_order_paid", DONE, "status 0 -> 1")
            uow.commit()
        self.after_commit(event_id)
        return True

    def deduct_stock(self, order_sn: str) -> bool:
        """Turn the order's stock locks into shipped units: stock -n, locked -n, sales +n."""
        with self.uow() as uow:
            self._paid_order(uow, order_sn)
            deducted = []
            for lock in uow.stock.locks_for(order_sn):
                if uow.stock.move_lock(lock.id, LockStatus.LOCKED, LockStatus.DEDUCTED):
                    uow.stock.deduct(lock.sku_id, lock.quantity)
                    deducted.append(f"sku {lock.sku_id} -{lock.quantity}")
            if deducted:
                uow.trace.record(order_sn, "deduct_stock", DONE, ", ".join(deducted))
            else:
                uow.trace.record(order_sn, "deduct_stock", SKIPPED, "no stock lock left to deduct")
            uow.commit()
            return bool(deducted)

    def award_points(self, order_sn: str) -> bool:
        """Credit the member with the order's integration and growth, once per order."""
        with self.uow() as uow:
            order = self._paid_order(uow, order_sn)
            if not uow.points.claim(order_sn, order.member_id, order.integration, order.growth):
                uow.trace.record(order_sn, "award_points", SKIPPED, "already awarded")
                uow.commit()
                return False
            uow.points.credit(order.member_id, order.integration, order.growth)
            uow.trace.record(
                order_sn, "award_points", DONE,
                f"member {order.member_id}: integration +{order.integration}, growth +{order.growth}",
            )
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
#: Every step, in the order a paid order goes through them.
ALL_STEPS = tuple(step for steps in STEPS_BY_EVENT.values() for step in steps)
