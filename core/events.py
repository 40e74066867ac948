"""Domain events, written to the outbox in the transaction of the change that causes them."""

from dataclasses import asdict, dataclass

PAYMENT_SUCCEEDED = "payment.succeeded"
ORDER_PAID = "order.paid"
ORDER_CLOSED = "order.closed"


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
