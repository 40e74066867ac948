"""The flash sale's pages and endpoints: the sale page, the click, the bounded wait, the status.

Each answer is JSON for API clients and a page for browsers (``Accept``), with a status code
per outcome. The click reads the member and their session generation (one primary-key read),
then makes one Redis round trip: the reservation script, which counts its rate limits too.
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
    url_for,
)
from werkzeug.exceptions import ServiceUnavailable

from ..adapters.metrics import METRICS
from ..adapters.redis import UNANSWERED
from ..core.seckill import Outcome, ReservationState, retry_after
from .api import json_error
from .context import current_member, owned_order, require_member, services
from .errors import error_page
from .same_origin import from_this_origin

bp = Blueprint("seckill", __name__, url_prefix="/seckill")

#: What a shopper reads, and the HTTP status, per outcome of a click.
ANSWERS = {
    Outcome.RESERVED: (200, "秒杀成功,订单号:{order_sn}"),
    Outcome.ALREADY_BOUGHT: (409, "您已抢到一件,每人限购一件,订单号:{order_sn}"),
    Outcome.SOLD_OUT: (410, "秒杀结束!"),
    Outcome.ENDED: (410, "秒杀已结束"),
    Outcome.NOT_STARTED: (403, "秒杀尚未开始"),
    Outcome.NOT_ON_SALE: (404, "该商品不在秒杀中"),
    Outcome.UNAVAILABLE: (503, "秒杀太火爆了,请稍后再试"),  # nothing reserved: Retry-After
}
NOT_LOGGED_IN = "请登录后再试!"
#: The pay step's answer to a number nothing holds for the member: lost, another's, made up.
NOT_HELD = "没有找到您的秒杀订单 {order_sn}:没有为您保留名额(抢购记录可能已丢失),不会生成订单,欢迎再次秒杀"
TOO_MANY = "请求过于频繁,请稍后再试"
#: The answer to a click that another page made (``same_origin``): nothing reserved.
NOT_SAME_ORIGIN = {"outcome": "not_same_origin", "message": "请在本站的秒杀页面点击抢购"}
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
        {
            "sku_id": sale.sku_id,
            "title": sale.title,
            "price": f"{sale.price:.2f}",
            "start": sale.start.isoformat(),
            "end": sale.end.isoformat(),
            "starts_in": max(0.0, (sale.start - now).total_seconds()),
            "start_ms": _ms(sale.start),
            "end_ms": _ms(sale.end),
            "open": sale.start <= now < sale.end,
            "units_left": units,
        }
        for sale, units in services().seckill.showcase(SHOWCASE)
    ]
    if wants_json():
        return jsonify(sales=shown, server_now_ms=_ms(now))
    return render_template(
        "seckill.html", sales=shown, logged_in=current_member() is not None, server_now_ms=_ms(now)
    )


def _ms(moment: datetime) -> int:
    """The server's clock in epoch milliseconds: the sale page counts down on it, not on the browser's."""
    return round(moment.timestamp() * 1000)


@bp.get("/<id:sku_id>")
def click(sku_id):
    """The click. API clients of a signed-in member are mostly answered before Flask sees
    them (``click_path``); the same answers are made here for everyone else. A browser's
    click reserves only when this site's page made it; any other gets a page whose form buys."""
    member = current_member()
    if member is None:
        if not wants_json():
            abort(401)  # the storefront sends browsers to the login page
        return jsonify(outcome="not_logged_in", message=NOT_LOGGED_IN), 401
    if not from_this_origin(request.environ, browser=not wants_json()):
        METRICS.click(NOT_SAME_ORIGIN["outcome"])
        if wants_json():
            return jsonify(NOT_SAME_ORIGIN), 403
        return render_template("seckill_confirm.html", sku_id=sku_id)
    return _reserve(member, sku_id)


@bp.post("/<int:sku_id>")
def buy(sku_id):
    """The confirm page's form: its CSRF token (checked by CSRFProtect) proves this site's page sent it."""
    return _reserve(require_member(), sku_id)


def _reserve(member, sku_id):
    result = services().seckill.click(member.id, sku_id, request.remote_addr or "")
    METRICS.click(result.outcome.value)
    if result.outcome is Outcome.RATE_LIMITED:
        return too_many_requests(result.retry_after)
    status, answer = click_answer(result, _pay_url)
    if wants_json():
        response = make_response(jsonify(answer), status)
    else:
        response = make_response(render_template("seckill_result.html", sku_id=sku_id, **answer), status)
    if result.retry_after is not None:  # the gate did not answer in time
        response.headers["Retry-After"] = str(result.retry_after)
    return response


def click_answer(result, pay_url) -> tuple[int, dict]:
    """The HTTP status and the answer of a click that was not rate limited; ``pay_url``
    makes the pay step's address from an order number."""
    status, message = ANSWERS[result.outcome]
    return status, {
        "outcome": result.outcome.value,
        "message": message.format(order_sn=result.order_sn),
        "order_sn": result.order_sn,
        "pay_url": pay_url(result.order_sn) if result.order_sn else None,
    }


@bp.get("/pay")
def pay():
    """Wait (at most SECKILL_PAY_WAIT_SECONDS) for the order, then pay it; if it is not made
    yet, a page that polls ``status`` and moves on when it is. A reservation that will never
    be an order is told so at once: abandoned (410), lost (404, as any number not the member's)."""
    member = require_member()
    order_sn = request.args.get("orderSn", "")
    if not (order_sn.isdigit() and len(order_sn) <= 64):
        abort(404, description=f"订单不存在: {order_sn}")
    seckill = services().seckill
    state = seckill.state(member.id, order_sn)
    if state is ReservationState.LOST:  # told at once, as any number not the member's
        abort(404, description=NOT_HELD.format(order_sn=order_sn))
    if state in (ReservationState.PENDING, ReservationState.CREATED) and seckill.wait_for_order(
        order_sn, member.id, services().seckill_settings.pay_wait_seconds
    ):
        return redirect(url_for("payment.choose", orderToken=owned_order(order_sn)["order_sn"]))
    if state is ReservationState.PENDING:
        state = seckill.state(member.id, order_sn)
    return render_template(
        "seckill_wait.html", order_sn=order_sn, state=state.value
    ), 202 if state is ReservationState.PENDING else 410


@bp.get("/orders/<order_sn>")
def status(order_sn):
    """JSON: pending (no order yet), created, closed, abandoned (the unit was not secured: no
    order will be made) or lost (nothing holds the reservation any more: no order will be made)."""
    member = current_member()
    if member is None:
        return jsonify(error="not_logged_in", message=NOT_LOGGED_IN), 401
    state = services().seckill.state(member.id, order_sn)
    return jsonify(
        order_sn=order_sn,
        state=state.value,
        pay_url=_pay_url(order_sn) if state is ReservationState.CREATED else None,
    )


@bp.errorhandler(404)
def not_found(error):
    return json_error(error) if wants_json() else error_page(error)


def gate_unavailable(error):
    """Redis did not answer a waiting step within SECKILL_REDIS_TIMEOUT_SECONDS: 503, try again."""
    response = make_response(error_page(ServiceUnavailable(description=ANSWERS[Outcome.UNAVAILABLE][1])))
    response.headers["Retry-After"] = "1"
    return response


for unanswered in UNANSWERED:
    bp.register_error_handler(unanswered, gate_unavailable)


RATE_LIMITED = {"outcome": "rate_limited", "message": TOO_MANY}


def too_many_requests(wait: float):
    """The answer over a rate limit: 429 and Retry-After."""
    if wants_json():
        response = make_response(jsonify(RATE_LIMITED), 429)
    else:
        response = make_response(
            render_template(
                "seckill_result.html",
                outcome="rate_limited",
                message=TOO_MANY,
                order_sn=None,
                pay_url=None,
                sku_id=None,
            ),
            429,
        )
    response.headers["Retry-After"] = str(retry_after(wait))
    return response
