"""Orders as the order service writes them: the order, its items, and the stock it locks.

Shared by the flash sale's order creator and the fixtures, in the caller's transaction.
"""

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select, update

from ...core import model
from .store import oms_order, oms_order_item, wms_stock_lock, wms_ware_sku


def insert_orders(
    session, orders: Sequence[tuple[model.Order, Sequence[tuple[int, int]]]], now: datetime
) -> None:
    """Insert ``[(order, [(sku_id, quantity), ...])]``, their items, and lock that stock.

    A handful of statements per call however many orders it holds, so a batch of seckill
    orders costs about what one order does. Raises LookupError for an unknown SKU.
    """
    session.execute(
        insert(oms_order),
        [
            {
                "id": order.id,
                "order_sn": order.order_sn,
                "member_id": order.member_id,
                "status": int(order.status),
                "total_amount": order.pay_amount,
                "pay_amount": order.pay_amount,
                "integration": order.integration,
                "growth": order.growth,
                "create_time": order.create_time or now,
            }
            for order, _ in orders
        ],
    )
    sns = [order.order_sn for order, _ in orders]
    ids = {
        sn: order_id
        for sn, order_id in session.execute(
            select(oms_order.c.order_sn, oms_order.c.id).where(oms_order.c.order_sn.in_(sns))
        )
    }
    items = [
        {
            "order_id": ids[order.order_sn],
            "order_sn": order.order_sn,
            "sku_id": item.sku_id,
            "sku_name": item.sku_name,
            "sku_price": item.price,
            "sku_quantity": item.quantity,
        }
        for order, _ in orders
        for item in order.items
    ]
    if items:
        session.execute(insert(oms_order_item), items)
    locks = [
        {
            "order_sn": order.order_sn,
            "sku_id": sku_id,
            "quantity": quantity,
            "status": int(model.LockStatus.LOCKED),
            "create_time": now,
        }
        for order, order_locks in orders
        for sku_id, quantity in order_locks
    ]
    if locks:
        session.execute(insert(wms_stock_lock), locks)
    locked = Counter()
    for lock in locks:
        locked[lock["sku_id"]] += lock["quantity"]
    for sku_id, quantity in sorted(locked.items()):  # one order of row locks: no deadlock between batches
        _change_locked(session, sku_id, quantity)


def _change_locked(session, sku_id: int, by: int) -> None:
    c = wms_ware_sku.c
    changed = session.execute(
        update(wms_ware_sku).where(c.sku_id == sku_id).values(stock_locked=c.stock_locked + by)
    ).rowcount
    if changed != 1:
        raise LookupError(f"no such sku {sku_id}")
