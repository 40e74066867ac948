"""Domain events, written to the outbox in the transaction of the change that causes them."""

from dataclasses import asdict, dataclass

PAYMENT_SUCCEEDED = "payment.succeeded"
ORDER_PAID = "order.paid"
#: An order that will not be paid was closed (0 -> 4); what it held goes back.
ORDER_CLOSED = "order.closed"
#: A payment's money must go back by itself (paid after its order closed, or paid twice).
REFUND_DUE = "payment.refund_due"
#: Every payment that paid the order is refunded: the points it earned go back.
ORDER_REFUNDED = "order.refunded"


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
