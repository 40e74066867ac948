"""JSON endpoints for pages that poll and for API clients."""

from flask import Blueprint, jsonify

from ..adapters.sql import queries
from .context import owned_order

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/orders/<order_sn>")
def order(order_sn):
    """The order with its payments, stock locks and points, for the return page's polling."""
    return jsonify(owned_order(order_sn))


@bp.get("/orders/<order_sn>/trace")
def trace(order_sn):
    """Which fulfilment steps of the order ran, when, and how; its events and their sending."""
    order = owned_order(order_sn)
    entries = queries.trace_of(order["order_sn"])
    return jsonify(
        order_sn=order["order_sn"],
        status=order["status"],
        **queries.fulfilment_of(order["order_sn"], entries),
        trace=entries,
        events=queries.events_of(order["order_sn"]),
    )


@bp.errorhandler(401)
@bp.errorhandler(404)
def json_error(error):
    return jsonify(error=error.name.lower().replace(" ", "_"), message=error.description), error.code
