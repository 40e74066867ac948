"""Closing an order that will not be paid: one way for every kind of order.

Whoever closes an order (the flash sale's expiry, an order timeout, an operator) calls
``OrderClosing.close``; whatever an order holds beyond its stock locks (a flash-sale unit)
is given back by the consumers of the ``order.closed`` event it writes, so it comes back
exactly once whoever closed the order.
"""

import logging
from collections.abc import Callable

from . import events
from .errors import OrderNotFound
from .fulfilment import DONE
from .model import LockStatus, OrderStatus

log = logging.getLogger(__name__)

#: The step name ``close`` leaves in the order's trace.
CLOSE_ORDER = "close_order"


class OrderClosing:
    """``uow`` builds units of work; ``order.closed`` leaves with the commit that wrote it
    (``ports.store.UnitOfWork``: the relay sends it)."""

    def __init__(self, uow: Callable):
        self.uow = uow

    def close(self, order_sn: str, reason: str) -> bool:
        """Awaiting payment (0) becomes closed (4) only if still 0; in the same transaction its
        stock locks are released (LOCKED -> RELEASED, stock_locked -n) and ``order.closed`` is
        written to the outbox. True if this call closed it; False if it had left status 0
        (paid, or closed by someone else)."""
        with self.uow() as uow:
            if uow.orders.get(order_sn) is None:
                raise OrderNotFound(order_sn)
            if not uow.orders.move(order_sn, OrderStatus.AWAITING_PAYMENT, OrderStatus.CLOSED):
                return False
            released = []
            for lock in uow.stock.locks_for(order_sn):
                if uow.stock.move_lock(lock.id, LockStatus.LOCKED, LockStatus.RELEASED):
                    uow.stock.release(lock.sku_id, lock.quantity)
                    released.append(f"sku {lock.sku_id} +{lock.quantity}")
            uow.outbox.add(events.order_closed(order_sn, reason))
            uow.trace.record(
                order_sn,
                CLOSE_ORDER,
                DONE,
                f"status 0 -> 4 ({reason}); released: {', '.join(released) or 'nothing'}",
            )
            uow.commit()
        log.info("order %s closed: %s", order_sn, reason)
        return True
