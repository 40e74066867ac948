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

    def __init__(self, uow: Callable):
        """``uow`` builds units of work; the events they commit leave with the commit
        (``ports.store.UnitOfWork``)."""
        self.uow = uow

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
                detail = f"status was already {order.status.name}"
                if order.status in DEAD_ORDER_STATUSES:
                    for payment in uow.payments.for_order(order_sn):
                        if payment.payment_status == PaymentStatus.PAID and uow.payments.mark_owed(
                            payment.id, RefundReason.PAID_AFTER_CLOSE
                        ):
                            uow.outbox.add(
                                events.refund_due(
                                    order_sn, payment.id, RefundReason.PAID_AFTER_CLOSE, payment.total_amount
                                )
                            )
                            detail += f"; payment #{payment.id} ({payment.payment_type}) paid after the close goes back"
                            log.warning(
                                "order %s closed while payment #%s was paid: it is refunded",
                                order_sn,
                                payment.id,
                            )
                uow.trace.record(order_sn, events.MARK_ORDER_PAID, SKIPPED, detail)
                uow.commit()
                return False
            uow.outbox.add(events.order_paid(order_sn))
            uow.trace.record(order_sn, events.MARK_ORDER_PAID, DONE, "status 0 -> 1")
            uow.commit()
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
                uow.trace.record(order_sn, events.DEDUCT_STOCK, DONE, ", ".join(deducted))
            else:
                uow.trace.record(order_sn, events.DEDUCT_STOCK, SKIPPED, "no stock lock left to deduct")
            uow.commit()
            return bool(deducted)

    def award_points(self, order_sn: str) -> bool:
        """Credit the member with the order's integration and growth, once per order (never
        for an order refunded already)."""
        with self.uow() as uow:
            order = self._paid_order(uow, order_sn)
            if fully_refunded(uow.payments.for_order(order_sn)):
                uow.trace.record(order_sn, events.AWARD_POINTS, SKIPPED, "the order was refunded: no points")
                uow.commit()
                return False
            if not uow.points.claim(order_sn, order.member_id, order.integration, order.growth):
                uow.trace.record(order_sn, events.AWARD_POINTS, SKIPPED, "already awarded")
                uow.commit()
                return False
            uow.points.credit(order.member_id, order.integration, order.growth)
            uow.trace.record(
                order_sn,
                events.AWARD_POINTS,
                DONE,
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
                if not any(
                    e.step == events.AWARD_POINTS and e.outcome in SETTLED
                    for e in uow.trace.for_order(order_sn)
                ):
                    raise PointsNotSettledYet(order_sn)
                uow.trace.record(order_sn, events.REVOKE_POINTS, SKIPPED, "no points were awarded")
                uow.commit()
                return False
            if not uow.points.claim(
                order_sn, award.member_id, award.integration, award.growth, PointsKind.REVOKE
            ):
                uow.trace.record(order_sn, events.REVOKE_POINTS, SKIPPED, "already taken back")
                uow.commit()
                return False
            uow.points.credit(award.member_id, -award.integration, -award.growth)
            uow.trace.record(
                order_sn,
                events.REVOKE_POINTS,
                DONE,
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


#: The steps of a paid order, in the order it goes through them (``events.STEPS_BY_EVENT`` routes them).
FULFILMENT_STEPS = (events.MARK_ORDER_PAID, *events.STEPS_BY_EVENT[events.ORDER_PAID])
