"""Read models for the pages: plain dictionaries, no business rule."""

from sqlalchemy import func, or_, select

from ...core.fulfilment import DEAD, DONE, FULFILMENT_STEPS, SKIPPED
from ...core.model import REFUNDABLE, LockStatus, OrderStatus, PaymentStatus, PointsKind, RefundStatus
from .models import (
    FulfilmentTrace,
    Member,
    Order,
    OutboxEvent,
    PaymentInfo,
    PaymentNotification,
    PaymentRefund,
    PointsLedger,
    StockLock,
    WareSku,
    db,
)


def member(member_id):
    return db.session.get(Member, member_id)


def member_by_username(username):
    return db.session.scalar(select(Member).where(Member.username == username))


#: "My orders" shows this many orders a page.
ORDERS_PER_PAGE = 20


def _payment_brief(p: PaymentInfo) -> dict:
    return {
        "provider": p.payment_type,
        "out_trade_no": p.out_trade_no,
        "status": PaymentStatus(p.payment_status).name.lower(),
        "trade_no": p.trade_no,
        "total_amount": f"{p.total_amount:.2f}",
        "refunded": f"{p.refunded:.2f}",
        "refund_reason": p.refund_reason,
        "callback_time": p.callback_time.isoformat() if p.callback_time else None,
    }


def _by_order(query) -> dict[str, list]:
    """The rows of ``query`` (of one entity, or of columns) by their ``order_sn``, each list in
    the query's order."""
    grouped: dict[str, list] = {}
    for row in db.session.execute(query):
        item = row[0] if len(row) == 1 else row
        grouped.setdefault(item.order_sn, []).append(item)
    return grouped


def order_views(orders: list[Order]) -> list[dict]:
    """Orders with their payments, stock locks, points award and fulfilment, as pages and JSON
    show them: one query for each of those for the whole list, so a page of orders costs the
    same number of queries whatever its length (its items come with the orders: ``selectin``)."""
    sns = [order.order_sn for order in orders]
    if not sns:
        return []
    locks = _by_order(
        select(StockLock.order_sn, StockLock.sku_id, StockLock.quantity, StockLock.status)
        .where(StockLock.order_sn.in_(sns))
        .order_by(StockLock.id)
    )
    points = _by_order(select(PointsLedger.order_sn, PointsLedger.kind).where(PointsLedger.order_sn.in_(sns)))
    payments = {
        sn: [_payment_brief(p) for p in rows]
        for sn, rows in _by_order(
            select(PaymentInfo).where(PaymentInfo.order_sn.in_(sns)).order_by(PaymentInfo.id)
        ).items()
    }
    traces = _by_order(
        select(FulfilmentTrace).where(FulfilmentTrace.order_sn.in_(sns)).order_by(FulfilmentTrace.id)
    )
    views = []
    for order in orders:
        kinds = {row.kind for row in points.get(order.order_sn, [])}
        trace = [_trace_entry(row) for row in traces.get(order.order_sn, [])]
        views.append(
            {
                "order_sn": order.order_sn,
                "member_id": order.member_id,
                "status": OrderStatus(order.status).name.lower(),
                "status_code": order.status,
                "pay_amount": f"{order.pay_amount:.2f}",
                "integration": order.integration,
                "growth": order.growth,
                "create_time": order.create_time.isoformat(),
                "items": [
                    {
                        "sku_id": i.sku_id,
                        "sku_name": i.sku_name,
                        "quantity": i.sku_quantity,
                        "price": f"{i.sku_price:.2f}",
                    }
                    for i in order.items
                ],
                "stock_locks": [
                    {
                        "sku_id": lock.sku_id,
                        "quantity": lock.quantity,
                        "status": LockStatus(lock.status).name.lower(),
                    }
                    for lock in locks.get(order.order_sn, [])
                ],
                "points_awarded": PointsKind.AWARD in kinds,
                "points_revoked": PointsKind.REVOKE in kinds,  # taken back (the order was refunded)
                "payments": payments.get(order.order_sn, []),
                **fulfilment_of(order.order_sn, trace),
            }
        )
    return views


def order_view(order_sn) -> dict | None:
    """One order as ``order_views`` shows it, or None."""
    order = db.session.scalar(select(Order).where(Order.order_sn == order_sn))
    return order_views([order])[0] if order is not None else None


def member_orders(
    member_id, before: int | None = None, limit: int = ORDERS_PER_PAGE
) -> tuple[list[dict], int | None]:
    """A page of the member's orders, newest first, and the ``before`` of the next (older) page,
    or None on the last: keyset paging down the (member_id, id) index, so the tenth thousand
    order costs what the first does (an OFFSET would read every order above it)."""
    query = select(Order).where(Order.member_id == member_id)
    if before is not None:
        query = query.where(Order.id < before)
    orders = list(db.session.scalars(query.order_by(Order.id.desc()).limit(limit + 1)))
    older = orders[limit - 1].id if len(orders) > limit else None
    return order_views(orders[:limit]), older


def _time(value):
    return value.isoformat() if value else None


def trace_of(order_sn) -> list[dict]:
    """Every entry of the order's fulfilment trace, oldest first."""
    rows = db.session.scalars(
        select(FulfilmentTrace).where(FulfilmentTrace.order_sn == order_sn).order_by(FulfilmentTrace.id)
    )
    return [_trace_entry(t) for t in rows]


def _trace_entry(t: FulfilmentTrace) -> dict:
    return {"step": t.step, "outcome": t.outcome, "detail": t.detail, "at": _time(t.at)}


def events_of(order_sn) -> list[dict]:
    """The order's outbox events: when written, last sent, and seen settled."""
    rows = db.session.scalars(
        select(OutboxEvent).where(OutboxEvent.order_sn == order_sn).order_by(OutboxEvent.id)
    )
    return [
        {
            "name": e.name,
            "created": _time(e.create_time),
            "sent": _time(e.sent_time),
            "settled": _time(e.settled_time),
        }
        for e in rows
    ]


def fulfilment_of(order_sn, trace=None) -> dict:
    """Where each step stands: done or skipped (in effect), failed (being retried), dead
    (dead-lettered: the order is stuck until replayed) or pending (not run yet); the steps of
    fulfilment, then any other step the order went through (an automatic refund...)."""
    trace = trace_of(order_sn) if trace is None else trace
    steps = []
    others = [entry["step"] for entry in trace if entry["step"] not in FULFILMENT_STEPS]
    for step in (*FULFILMENT_STEPS, *dict.fromkeys(others)):
        entries = [entry for entry in trace if entry["step"] == step]
        settled = [entry for entry in entries if entry["outcome"] in (DONE, SKIPPED)]
        if settled:
            current = settled[0]
        elif entries:
            current = entries[-1]
        else:
            current = {"outcome": "pending", "at": None, "detail": ""}
        steps.append(
            {"step": step, "state": current["outcome"], "at": current["at"], "detail": current["detail"]}
        )
    return {"fulfilment": steps, "stuck": any(step["state"] == DEAD for step in steps)}


def stock_levels(sku_ids) -> list[dict]:
    """The stock of these SKUs (those of a page of orders: never the whole catalogue)."""
    rows = db.session.scalars(
        select(WareSku).where(WareSku.sku_id.in_(set(sku_ids))).order_by(WareSku.sku_id)
    )
    return [
        {
            "sku_id": s.sku_id,
            "sku_name": s.sku_name,
            "stock": s.stock,
            "stock_locked": s.stock_locked,
            "sales": s.sales,
        }
        for s in rows
    ]


# operators


def _payment(p: PaymentInfo, order_status=None) -> dict:
    status = PaymentStatus(p.payment_status)
    return {
        "id": p.id,
        "order_sn": p.order_sn,
        "order_status": None if order_status is None else OrderStatus(order_status).name.lower(),
        "provider": p.payment_type,
        "payment_type_code": p.payment_type_code,
        "out_trade_no": p.out_trade_no,
        "trade_no": p.trade_no,
        "status": status.name.lower(),
        "total_amount": f"{p.total_amount:.2f}",
        "refunded": f"{p.refunded:.2f}",
        "refund_reserved": f"{p.refund_reserved:.2f}",
        "refundable": f"{(p.total_amount - p.refund_reserved) if status in REFUNDABLE else 0:.2f}",
        "refund_reason": p.refund_reason,
        "owed_back": bool(p.refund_reason) and status in REFUNDABLE,
        "flag": p.flag,
        "subject": p.subject,
        "create_time": _time(p.create_time),
        "callback_time": _time(p.callback_time),
        "query_attempts": p.query_attempts,
        "next_query_time": _time(p.next_query_time),
    }


#: What ``payments`` can be filtered by, besides a status name.
ATTENTION = {
    "flagged": PaymentInfo.flag.is_not(None),
    "owed": PaymentInfo.refund_reason.is_not(None)
    & PaymentInfo.payment_status.in_([int(s) for s in REFUNDABLE]),
    "attention": or_(PaymentInfo.flag.is_not(None), PaymentInfo.refund_reason.is_not(None)),
}


def payments(
    status: str | None = None,
    attention: str | None = None,
    order_sn: str | None = None,
    limit: int = 50,
    search: str | None = None,
    attention_first: bool = False,
) -> list[dict]:
    """Payments, newest first: of one status (``paid``...), needing attention (``flagged``,
    ``owed``: owed back and not refunded yet, ``attention``: either, or ever owed back), of an
    order; ``search``: whose order number, out_trade_no or provider's trade_no is or begins with
    it; ``attention_first``: the flagged first, then those owed back, each newest first."""
    query = select(PaymentInfo, Order.status).join(
        Order, Order.order_sn == PaymentInfo.order_sn, isouter=True
    )
    if attention_first:
        query = query.order_by(PaymentInfo.flag.is_(None), ~ATTENTION["owed"])
    query = query.order_by(PaymentInfo.id.desc()).limit(limit)
    if status:
        query = query.where(PaymentInfo.payment_status == int(PaymentStatus[status.upper()]))
    if attention:
        query = query.where(ATTENTION[attention])
    if order_sn:
        query = query.where(PaymentInfo.order_sn == order_sn)
    if search:
        prefix = search.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"  # no backslash: MySQL
        query = query.where(
            or_(
                *(
                    column.like(prefix, escape="!")
                    for column in (PaymentInfo.order_sn, PaymentInfo.out_trade_no, PaymentInfo.trade_no)
                )
            )
        )
    views = [_payment(p, order_status) for p, order_status in db.session.execute(query)]
    _summarise(views)
    return views


def _summarise(views: list[dict]) -> None:
    """Add to each payment what was heard about its trade (source and outcome, oldest first)
    and its refunds, in two queries for the whole list."""
    heard = {}
    trades = {view["out_trade_no"] for view in views}
    if trades:
        rows = db.session.execute(
            select(
                PaymentNotification.provider,
                PaymentNotification.out_trade_no,
                PaymentNotification.source,
                PaymentNotification.outcome,
            )
            .where(PaymentNotification.out_trade_no.in_(trades))
            .order_by(PaymentNotification.id)
        )
        for provider, out_trade_no, source, outcome in rows:
            heard.setdefault((provider, out_trade_no), []).append(f"{source}: {outcome}")
    refunds = {}
    if views:
        rows = db.session.scalars(
            select(PaymentRefund)
            .where(PaymentRefund.payment_id.in_([v["id"] for v in views]))
            .order_by(PaymentRefund.id)
        )
        for r in rows:
            refunds.setdefault(r.payment_id, []).append(
                f"{r.out_request_no} ¥{r.amount:.2f} {RefundStatus(r.status).name.lower()}"
            )
    for view in views:
        view["heard"] = heard.get((view["provider"], view["out_trade_no"]), [])
        view["refund_list"] = refunds.get(view["id"], [])


def notifications_of(provider: str, out_trade_no: str) -> list[dict]:
    """The notify log's entries about one trade (notifications, and answers to our queries), oldest first."""
    rows = db.session.scalars(
        select(PaymentNotification)
        .where(PaymentNotification.provider == provider, PaymentNotification.out_trade_no == out_trade_no)
        .order_by(PaymentNotification.id)
    )
    return [
        {
            "id": n.id,
            "source": n.source,
            "received_at": _time(n.received_at),
            "notify_id": n.notify_id,
            "verified": bool(n.verified),
            "accepted": bool(n.accepted),
            "outcome": n.outcome,
            "detail": n.detail or "",
            "replay_of": n.replay_of,
        }
        for n in rows
    ]


def refunds_of(payment_id) -> list[dict]:
    rows = db.session.scalars(
        select(PaymentRefund).where(PaymentRefund.payment_id == payment_id).order_by(PaymentRefund.id)
    )
    return [
        {
            "id": r.id,
            "out_request_no": r.out_request_no,
            "amount": f"{r.amount:.2f}",
            "reason": r.reason,
            "status": RefundStatus(r.status).name.lower(),
            "answer": r.answer,
            "create_time": _time(r.create_time),
            "update_time": _time(r.update_time),
        }
        for r in rows
    ]


def payment(payment_id) -> dict | None:
    """One payment for operators: with its order, what the provider said about it, its refunds,
    and the order's other payments."""
    found = db.session.execute(
        select(PaymentInfo, Order.status)
        .join(Order, Order.order_sn == PaymentInfo.order_sn, isouter=True)
        .where(PaymentInfo.id == payment_id)
    ).first()
    if found is None:
        return None
    row, order_status = found
    view = _payment(row, order_status)
    view["notifications"] = notifications_of(row.payment_type, row.out_trade_no)
    view["refunds"] = refunds_of(row.id)
    view["order_payments"] = [p for p in payments(order_sn=row.order_sn) if p["id"] != row.id]
    return view


def outbox_backlog() -> dict:
    """Events written but not yet accepted by the broker, and when the oldest was written."""
    count, oldest = db.session.execute(
        select(func.count(OutboxEvent.id), func.min(OutboxEvent.create_time)).where(
            OutboxEvent.sent_time.is_(None)
        )
    ).one()
    return {"unsent": count, "oldest_unsent": _time(oldest)}
