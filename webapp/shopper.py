"""How the shop's own pages show an order to its shopper: the status the shopper sees (a paid
order whose money all went back is refunded), the badge's colour, and Chinese names only (the
operators' pages add the raw names; a shopper never reads them)."""

from flask import Flask

from ..core import events
from ..core.model import RefundReason
from .formatting import status_chinese

#: Order statuses a payment has settled.
PAID = ("awaiting_shipment", "shipped", "done")
#: Names formatting.py has no kind for, and the statuses only a shopper's view of an order has.
NAMES = {
    "order": {"refunded": "已退款", "partially_refunded": "部分退款"},
    "lock": {"locked": "已锁定", "deducted": "已扣减", "released": "已释放"},
    "step": {
        events.MARK_ORDER_PAID: "确认付款",
        events.DEDUCT_STOCK: "扣减库存",
        events.AWARD_POINTS: "发放积分",
        events.REVOKE_POINTS: "收回积分",
        events.AUTO_REFUND: "自动退款",
    },
    "state": {
        "done": "完成",
        "skipped": "无需处理",
        "pending": "等待中",
        "failed": "重试中",
        "dead": "已停止",
    },
}
#: A badge's class per status a shopper sees (green paid, amber to pay, blue refunded, grey closed).
TONES = {
    "awaiting_payment": "warn",
    "awaiting_shipment": "ok",
    "shipped": "ok",
    "done": "ok",
    "refunded": "info",
    "partially_refunded": "info",
    "unpaid": "warn",
    "paid": "ok",
}


def shopper_status(order: dict) -> str:
    """The order's status as its shopper sees it; the order's own status keeps what fulfilment
    did. A second payment given back by itself (paid twice, paid after close) does not count:
    the order stays paid by the other."""
    if order["status"] not in PAID:
        return order["status"]
    kept = [
        p
        for p in order["payments"]
        if p["status"] in ("paid", "partially_refunded", "refunded")
        and p["refund_reason"] not in RefundReason.AUTOMATIC
    ]
    if kept and all(p["status"] == "refunded" for p in kept):
        return "refunded"
    if any(p["status"] != "paid" for p in kept):
        return "partially_refunded"
    return order["status"]


def chinese(status: str, kind: str = "order") -> str:
    """The Chinese name alone; an unknown status shows as itself, so nothing is hidden."""
    return NAMES.get(kind, {}).get(status) or status_chinese(status, kind) or status


def register(app: Flask) -> None:
    app.jinja_env.filters.update(
        shopper_status=shopper_status, chinese=chinese, tone=lambda status: TONES.get(status, "muted")
    )
