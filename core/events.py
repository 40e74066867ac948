"""Domain events, written to the outbox in the transaction of the change that causes them, and
the background steps they trigger.

Each event and each step is named once, here; ``STEPS_BY_EVENT`` is the one routing table: the
outbox relay, the bus, the step actors and the replay command all read it.
"""

from dataclasses import asdict, dataclass

PAYMENT_SUCCEEDED = "payment.succeeded"
ORDER_PAID = "order.paid"
#: An order that will not be paid was closed (0 -> 4); what it held goes back.
ORDER_CLOSED = "order.closed"
#: A payment's money must go back by itself (paid after its order closed, or paid twice).
REFUND_DUE = "payment.refund_due"
#: Every payment that paid the order is refunded: the points it earned go back.
ORDER_REFUNDED = "order.refunded"

# The steps: each takes the order number and is idempotent; each is an actor of the bus and the
# step its service records in the order's trace.

#: Awaiting payment (0) becomes awaiting shipment (1) (``FulfilmentService.mark_order_paid``).
MARK_ORDER_PAID = "mark_order_paid"
#: The order's locked stock is shipped (``FulfilmentService.deduct_stock``).
DEDUCT_STOCK = "deduct_stock"
#: The member earns the order's points (``FulfilmentService.award_points``).
AWARD_POINTS = "award_points"
#: Money owed back is refunded by itself (``RefundService.auto_refund``).
AUTO_REFUND = "auto_refund"
#: A refunded order's points go back (``FulfilmentService.revoke_points``).
REVOKE_POINTS = "revoke_points"
#: A closed order's unpaid trades are closed at their providers (``OrderExpiry.close_trades``).
CLOSE_TRADES = "close_trades"
#: A closed flash-sale order's unit goes back to the gate (``SeckillService.give_back``).
GIVE_BACK_SECKILL_UNIT = "give_back_seckill_unit"

#: Which steps each event triggers, in the order they are sent: the one routing table.
STEPS_BY_EVENT = {
    PAYMENT_SUCCEEDED: (MARK_ORDER_PAID,),
    ORDER_PAID: (DEDUCT_STOCK, AWARD_POINTS),
    REFUND_DUE: (AUTO_REFUND,),
    ORDER_REFUNDED: (REVOKE_POINTS,),
    ORDER_CLOSED: (CLOSE_TRADES, GIVE_BACK_SECKILL_UNIT),
}
#: Every step, once each, in the table's order.
ALL_STEPS = tuple(dict.fromkeys(step for steps in STEPS_BY_EVENT.values() for step in steps))


@dataclass(frozen=True)
class Event:
    """An event as stored and sent: a name and a JSON-able payload keyed by order."""

    name: str
    order_sn: str
    data: dict

    def payload(self) -> dict:
        return asdict(self)


def payment_succeeded(order_sn, provider, trade_no, amount) -> Event:
    return Event(
        PAYMENT_SUCCEEDED,
        order_sn,
        {"provider": provider, "trade_no": trade_no, "amount": str(amount)},
    )


def order_paid(order_sn) -> Event:
    return Event(ORDER_PAID, order_sn, {})


def order_closed(order_sn, reason) -> Event:
    return Event(ORDER_CLOSED, order_sn, {"reason": reason})


def refund_due(order_sn, payment_id, reason, amount) -> Event:
    return Event(REFUND_DUE, order_sn, {"payment_id": payment_id, "reason": reason, "amount": str(amount)})


def order_refunded(order_sn) -> Event:
    return Event(ORDER_REFUNDED, order_sn, {})
