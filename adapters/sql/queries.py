"""Read models for the pages: plain dictionaries, no business rule."""

from sqlalchemy import select

from ...core.fulfilment import ALL_STEPS, DEAD, DONE, SKIPPED
from ...core.model import LockStatus, OrderStatus, PaymentStatus
from .models import (
    FulfilmentTrace,
    Member,
    Order,
    OutboxEvent,
    PaymentInfo,
    PointsLedger,
    StockLock,
    WareSku,
    db,
)


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
        **fulfilment_of(order_sn),
    }


def _time(value):
    return value.isoformat() if value else None


def trace_of(order_sn) -> list[dict]:
    """Every entry of the order's fulfilment trace, oldest first."""
    rows = db.session.scalars(
        select(FulfilmentTrace).where(FulfilmentTrace.order_sn == order_sn).order_by(FulfilmentTrace.id)
    )
    return [{"step": t.step, "outcome": t.outcome, "detail": t.detail, "at": _time(t.at)} for t in rows]


def events_of(order_sn) -> list[dict]:
    """The order's outbox events: when written, last sent, and seen settled."""
    rows = db.session.scalars(select(OutboxEvent).where(OutboxEvent.order_sn == order_sn).order_by(OutboxEvent.id))
    return [
        {"name": e.name, "created": _time(e.create_time), "sent": _time(e.sent_time), "settled": _time(e.settled_time)}
        for e in rows
    ]


def fulfilment_of(order_sn, trace=None) -> dict:
    """Where each step stands: done or skipped (in effect), failed (being retried), dead
    (dead-lettered: the order is stuck until replayed) or pending (not run yet)."""
    trace = trace_of(order_sn) if trace is None else trace
    steps = []
    for step in ALL_STEPS:
        entries = [entry for entry in trace if entry["step"] == step]
        settled = [entry for entry in entries if entry["outcome"] in (DONE, SKIPPED)]
        if settled:
            current = settled[0]
        elif entries:
            current = entries[-1]
        else:
            current = {"outcome": "pending", "at": None, "detail": ""}
        steps.append({"step": step, "state": current["outcome"], "at": current["at"], "detail": current["detail"]})
    return {"fulfilment": steps, "stuck": any(step["state"] == DEAD for step in steps)}


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
