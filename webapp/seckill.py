"""The flash sale's pages and endpoints: the sale page, the click, the bounded wait, the status.

Each answer is JSON for API clients and a page for browsers (``Accept``), with a status code
per outcome. The click reads the member from the session cookie and nothing from the
database: its one round trip is the reservation script, which counts its rate limits too.
"""

from datetime import datetime, timedelta

from flask import (
    Blueprint,
    abort,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ..core.seckill import Outcome, SeckillOrderStatus, retry_after
from .api import json_error
from .context import owned_order, services

bp = Blueprint("seckill", __name__, url_prefix="/seckill")

#: What a shopper reads, and the HTTP status, per outcome of a click.
ANSWERS = {
    Outcome.RESERVED: (200, "秒杀成功,订单号:{order_sn}"),
    Outcome.ALREADY_BOUGHT: (409, "您已抢到一件,每人限购一件,订单号:{order_sn}"),
    Outcome.SOLD_OUT: (410, "秒杀结束!"),
    Outcome.ENDED: (410, "秒杀已结束"),
    Outcome.NOT_STARTED: (403, "秒杀尚未开始"),
    Outcome.NOT_ON_SALE: (404, "该商品不在秒杀中"),
}
NOT_LOGGED_IN = "请登录后再试!"
TOO_MANY = "请求过于频繁,请稍后再试"
#: The sale page shows sales starting within this time.
SHOWCASE = timedelta(days=7)


def wants_json() -> bool:
    """API clients (JSON, or anything) get JSON; browsers, which prefer HTML, get pages."""
    accept = request.accept_mimetypes
    return accept.quality("text/html") <= accept.quality("application/json")


def _pay_url(order_sn):
    return url_for("seckill.pay", orderSn=order_sn)


@bp.get("")
def sales():
    now = datetime.now()
    shown = [
        {"sku_id": sale.sku_id, "title": sale.title, "price": f"{sale.price:.2f}", "start": sale.start.isoformat(),
         "end": sale.end.isoformat(), "starts_in": max(0.0, (sale.start - now).total_seconds()),
         "open": sale.start <= now < sale.end, "units_left": units}
        for sale, units in services().seckill.showcase(SHOWCASE)
    ]
    if wants_json():
        return jsonify(sales=shown)
    return render_template("seckill.html", sales=shown, logged_in="member_id" in session)


@bp.get("/<int:sku_id>")
def click(sku_id):
    """The click. API clients of a signed-in member are mostly answered before Flask sees
    them (``click_path``); the same answers are made here for everyone else."""
    member_id = session.get("member_id")
    if member_id is None:
        if not wants_json():
            abort(401)  # the storefront sends browsers to the login page
        return jsonify(outcome="not_logged_in", message=NOT_LOGGED_IN), 401
    result = services().seckill.click(member_id, sku_id, request.remote_addr or "")
    if result.outcome is Outcome.RATE_LIMITED:
        return too_many_requests(result.retry_after)
    status, answer = click_answer(result, _pay_url)
    if wants_json():
        return jsonify(answer), status
    return render_template("seckill_result.html", sku_id=sku_id, **answer), status


def click_answer(result, pay_url) -> tuple[int, dict]:
    """The HTTP status and the answer of a click that was not rate limited; ``pay_url``
    makes the pay step's address from an order number."""
    status, message = ANSWERS[result.outcome]
    return status, {"outcome": result.outcome.value, "message": message.format(order_sn=result.order_sn),
                    "order_sn": result.order_sn, "pay_url": pay_url(result.order_sn) if result.order_sn else None}


@bp.get("/pay")
def pay():
    """Wait (at most SECKILL_PAY_WAIT_SECONDS) for the order, then pay it; if it is not made
    yet, a page that polls ``status`` and moves on when it is."""
    if "member_id" not in session:
        abort(401)
    order_sn = request.args.get("orderSn", "")
    if not (order_sn.isdigit() and len(order_sn) <= 64):
        abort(404, description=f"订单不存在: {order_sn}")
    seckill = services().seckill
    if seckill.wait_for_order(order_sn, services().seckill_settings.pay_wait_seconds):
        return redirect(url_for("payment.choose", orderToken=owned_order(order_sn)["order_sn"]))
    state = _state(order_sn)
    return render_template("seckill_wait.html", order_sn=order_sn, state=state), 202 if state == "pending" else 410


@bp.get("/orders/<order_sn>")
def status(order_sn):
    """JSON: pending (no order yet), created, closed or abandoned (no order will be made)."""
    if "member_id" not in session:
        return jsonify(error="not_logged_in", message=NOT_LOGGED_IN), 401
    state = _state(order_sn)
    return jsonify(order_sn=order_sn, state=state, pay_url=_pay_url(order_sn) if state == "created" else None)


def _state(order_sn) -> str:
    """What became of the member's reservation; another member's is not found."""
    record = services().seckill.order(order_sn)
    if record is None:
        return "pending"
    if record.reservation.member_id != session["member_id"]:
        abort(404, description=f"订单不存在: {order_sn}")
    return {SeckillOrderStatus.CREATED: "created", SeckillOrderStatus.CLOSED: "closed",
            SeckillOrderStatus.ABANDONED: "abandoned"}[record.status]


@bp.errorhandler(404)
def not_found(error):
    return json_error(error) if wants_json() else error


RATE_LIMITED = {"outcome": "rate_limited", "message": TOO_MANY}


def too_many_requests(wait: float):
    """The answer over a rate limit: 429 and Retry-After."""
    if wants_json():
        response = make_response(jsonify(RATE_LIMITED), 429)
    else:
        response = make_response(render_template("seckill_result.html", outcome="rate_limited", message=TOO_MANY,
                                                 order_sn=None, pay_url=None, sku_id=None), 429)
    response.headers["Retry-After"] = str(retry_after(wait))
    return response
