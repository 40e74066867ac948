"""The steps that follow a payment; each runs at least once and takes effect at most once."""

import logging
from collections.abc import Callable

from . import events
from .errors import OrderNotFound, OrderNotPaidYet, PointsNotSettledYet
from .model import (
    DEAD_ORDER_STATUSES,
    PAID_ORDER_STATUSES,
    LockStatus,
    OrderStatus,
    PaymentStatus,
    PointsKind,
    RefundReason,
    fully_refunded,
)

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
        """Awaiting payment (0) becomes awaiting shipment (1), only if still 0.

        An order closed meanwhile (it expired while its payment was in flight) stays closed:
        its payment is owed back (``payment.refund_due``).
        """
        with self.uow() as uow:
            order = uow.orders.get(order_sn)
            if order is None:
                raise OrderNotFound(order_sn)
            moved = uow.orders.move(order_sn, OrderStatus.AWAITING_PAYMENT, OrderStatus.AWAITING_SHIPMENT)
            if not moved:
                order = uow.orders.get(order_sn)
                log.info("order %s already left status 0 (now %s)", order_sn, order.status.name)
                detail, event_ids = f"status was already {order.status.name}", []
                if order.status in DEAD_ORDER_STATUSES:
                    for payment in uow.payments.for_order(order_sn):
                        if payment.payment_status == PaymentStatus.PAID and uow.payments.mark_owed(
                                payment.id, RefundReason.PAID_AFTER_CLOSE):
                            event_ids.append(uow.outbox.add(events.refund_due(
                                order_sn, payment.id, RefundReason.PAID_AFTER_CLOSE, payment.total_amount)))
                            detail += f"; payment #{payment.id} ({payment.payment_type}) paid after the close goes back"
                            log.warning("order %s closed while payment #%s was paid: it is refunded", order_sn, payment.id)
                uow.trace.record(order_sn, "mark_order_paid", SKIPPED, detail)
                uow.commit()
                if event_ids:
                    self.after_commit(*event_ids)
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
        """Credit the member with the order's integration and growth, once per order (never
        for an order refunded already)."""
        with self.uow() as uow:
            order = self._paid_order(uow, order_sn)
            if fully_refunded(uow.payments.for_order(order_sn)):
                uow.trace.record(order_sn, "award_points", SKIPPED, "the order was refunded: no points")
                uow.commit()
                return False
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

    def revoke_points(self, order_sn: str) -> bool:
        """Take back the points a refunded order earned, once per order.

        Waits (``PointsNotSettledYet``, retried) until the award step has had its outcome, so
        an award still on its way cannot slip in after the revocation.
        """
        with self.uow() as uow:
            order = uow.orders.get(order_sn)
            if order is None:
                raise OrderNotFound(order_sn)
            award = uow.points.entry(order_sn, PointsKind.AWARD)
            if award is None:
                if not any(e.step == "award_points" and e.outcome in SETTLED for e in uow.trace.for_order(order_sn)):
                    raise PointsNotSettledYet(order_sn)
                uow.trace.record(order_sn, "revoke_points", SKIPPED, "no points were awarded")
                uow.commit()
                return False
            if not uow.points.claim(order_sn, award.member_id, award.integration, award.growth, PointsKind.REVOKE):
                uow.trace.record(order_sn, "revoke_points", SKIPPED, "already taken back")
                uow.commit()
                return False
            uow.points.credit(award.member_id, -award.integration, -award.growth)
            uow.trace.record(
                order_sn, "revoke_points", DONE,
                f"member {award.member_id}: integration -{award.integration}, growth -{award.growth}",
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


#: Which background steps each event triggers; the bus adapters route by this table. Every
#: step takes the order number and is idempotent.
STEPS_BY_EVENT = {
    events.PAYMENT_SUCCEEDED: ("mark_order_paid",),
    events.ORDER_PAID: ("deduct_stock", "award_points"),
    events.REFUND_DUE: ("auto_refund",),
    events.ORDER_REFUNDED: ("revoke_points",),
    events.ORDER_CLOSED: ("close_trades",),
}
#: The steps of a paid order, in the order it goes through them.
FULFILMENT_STEPS = ("mark_order_paid", "deduct_stock", "award_points")
#: Every step.
ALL_STEPS = tuple(step for steps in STEPS_BY_EVENT.values() for step in steps)
