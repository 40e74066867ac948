"""Arrange members, stock and orders as the shop's other services would, for tests and demos.

Same names and shapes as ``InMemoryDatabase.add_member/add_sku/add_order``, so one piece of
arranging code serves both stores. Each call commits ``db.session`` of the current app context.
"""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import insert

from ...core import model
from ...core.fulfilment import FULFILMENT_STEPS
from .models import (
    FulfilmentTrace,
    Member,
    PaymentInfo,
    PaymentNotification,
    PointsLedger,
    StockLock,
    WareSku,
    db,
)
from .orders import insert_orders


def add_member(member_id: int, username: str, password_hash: str = "x") -> Member:
    member = Member(id=member_id, username=username, password_hash=password_hash)
    db.session.add(member)
    db.session.commit()
    return member


def add_sku(sku_id: int, sku_name: str, stock: int, price: Decimal = Decimal("10.00")) -> WareSku:
    sku = WareSku(sku_id=sku_id, sku_name=sku_name, stock=stock, price=price)
    db.session.add(sku)
    db.session.commit()
    return sku


def add_order(order: model.Order, locks=()) -> None:
    """Store ``order`` with its items and lock ``[(sku_id, quantity)]`` of stock for it."""
    insert_orders(db.session, [(order, locks)], datetime.now())
    db.session.commit()


def add_paid_history(member_id: int, sns: list[str], at: datetime, flagged_every=0, owed_every=0) -> None:
    """A member's past: one order per number in ``sns``, placed at ``at``, paid with mockpay
    and fulfilled (its stock deducted, its points awarded, its trace and notification kept);
    every ``flagged_every``-th payment flagged, every ``owed_every``-th owed back (0: none).
    In a handful of bulk statements, for the tests and benchmarks of cost as history grows."""
    orders = [
        model.Order(
            sn,
            member_id,
            model.OrderStatus.AWAITING_SHIPMENT,
            Decimal("9.90"),
            9,
            9,
            [model.OrderItem(1, "历史商品", 1, Decimal("9.90"))],
            create_time=at,
        )
        for sn in sns
    ]
    insert_orders(db.session, [(order, ()) for order in orders], at)

    def every(n, step, value):
        return value if step and n % step == 0 else None

    db.session.execute(
        insert(PaymentInfo),
        [
            {
                "out_trade_no": sn,
                "order_sn": sn,
                "payment_type": "mockpay",
                "total_amount": Decimal("9.90"),
                "payment_status": int(model.PaymentStatus.PAID),
                "create_time": at,
                "callback_time": at,
                "flag": every(n, flagged_every, "look at me"),
                "refund_reason": every(n, owed_every, "paid twice"),
            }
            for n, sn in enumerate(sns)
        ],
    )
    db.session.execute(
        insert(PaymentNotification),
        [
            {
                "provider": "mockpay",
                "notify_id": f"N{sn}",
                "out_trade_no": sn,
                "received_at": at,
                "verified": True,
                "accepted": True,
                "outcome": "paid",
                "source": "notify",
                "raw": "{}",
            }
            for sn in sns
        ],
    )
    db.session.execute(
        insert(StockLock),
        [
            {
                "order_sn": sn,
                "sku_id": 1,
                "quantity": 1,
                "status": int(model.LockStatus.DEDUCTED),
                "create_time": at,
            }
            for sn in sns
        ],
    )
    db.session.execute(
        insert(PointsLedger),
        [
            {
                "order_sn": sn,
                "kind": model.PointsKind.AWARD,
                "member_id": member_id,
                "integration": 9,
                "growth": 9,
                "create_time": at,
            }
            for sn in sns
        ],
    )
    db.session.execute(
        insert(FulfilmentTrace),
        [
            {"order_sn": sn, "step": step, "outcome": "done", "detail": "", "at": at}
            for sn in sns
            for step in FULFILMENT_STEPS
        ],
    )
    db.session.commit()
