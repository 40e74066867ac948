"""Access to the services the application factory built."""

from flask import abort, current_app, session

from ..adapters.bootstrap import Services
from ..adapters.sql import queries
from ..core.errors import OrderNotFound


def services() -> Services:
    return current_app.extensions["gmall"]


def current_member():
    """The logged-in member, or None."""
    member_id = session.get("member_id")
    return queries.member(member_id) if member_id else None


def require_member():
    member = current_member()
    if member is None:
        abort(401)
    return member


def owned_order(order_sn) -> dict:
    """The logged-in member's order as a view; 404 for unknown orders and other members' alike."""
    member = require_member()
    order = queries.order_view(order_sn)
    if order is None or order["member_id"] != member.id:
        abort(404, description=str(OrderNotFound(order_sn)))
    return order
