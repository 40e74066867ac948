"""Read models for the pages: plain dictionaries, no business rule."""

from sqlalchemy import select

from ...core.model import LockStatus, OrderStatus, PaymentStatus
from .models import Member, Order, PaymentInfo, PointsLedger, StockLock, WareSku, db


def member(member_id):
    return db.session.get(Member, member_id)


def member_by_username(username):
    return db.session.scalar(select(Member).where(Member.username == username))


def payments_of(order_sn) -> list[dict]:
    rows = db.session.scalars(select(PaymentInfo).where(PaymentInfo.order_sn == order_sn).order_by(PaymentInfo.id))
    return [
        {
            "provider": p.payment_type,
            "out_trade_no": p.out_trade_no,
            "status": PaymentStatus(p.payment_status).name.lower(),
            "trade_no": p.trade_no,
            "total_amount": f"{p.total_amount:.2f}",
            "callback_time": p.callback_time.isoformat() if p.callback_time else None,
        }
        for p in rows
    ]


def order_view(order_sn) -> dict | None:
    """An order with its payments, stock locks and points award, as pages and JSON show it."""
    order = db.session.scalar(select(Order).where(Order.order_sn == order_sn))
    if order is None:
        return None
    locks = db.session.scalars(select(StockLock).where(StockLock.order_sn == order_sn).order_by(StockLock.id))
    award = db.session.scalar(
        select(PointsLedger).where(PointsLedger.order_sn == order_sn, PointsLedger.kind == "award")
    )
    return {
        "order_sn": order.order_sn,
        "member_id": order.member_id,
        "status": OrderStatus(order.status).name.lower(),
        "status_code": order.status,
        "pay_amount": f"{order.pay_amount:.2f}",
        "integration": order.integration,
        "growth": order.growth,
        "create_time": order.create_time.isoformat(),
        "items": [
            {"sku_id": i.sku_id, "sku_name": i.sku_name, "quantity": i.sku_quantity, "price": f"{i.sku_price:.2f}"}
            for i in order.items
        ],
        "stock_locks": [
            {"sku_id": lock.sku_id, "quantity": lock.quantity, "status": LockStatus(lock.status).name.lower()}
            for lock in locks
        ],
        "points_awarded": award is not None,
        "payments": payments_of(order_sn),
    }


def member_orders(member_id) -> list[dict]:
    sns = db.session.scalars(
        select(Order.order_sn).where(Order.member_id == member_id).order_by(Order.id.desc())
    )
    return [order_view(sn) for sn in sns]


def stock_levels() -> list[dict]:
    rows = db.session.scalars(select(WareSku).order_by(WareSku.sku_id))
    return [
        {"sku_id": s.sku_id, "sku_name": s.sku_name, "stock": s.stock, "stock_locked": s.stock_locked,
         "sales": s.sales}
        for s in rows
    ]
