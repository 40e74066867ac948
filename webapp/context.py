"""Access to the services the application factory built, and the signed-in member.

The session cookie names the member and the session generation it was signed in under
(``adapters/sql/members.py``); it counts only while that is the member's current one, so a
logout or a password change ends it, and every copy of it, for good.
"""

from flask import abort, current_app, session

from ..adapters.bootstrap import Services
from ..adapters.sql import members, queries
from ..core.errors import OrderNotFound

#: The session's keys for the member and their session generation.
MEMBER, EPOCH = "member_id", "epoch"


def services() -> Services:
    return current_app.extensions["gmall"]


def sign_in(member) -> None:
    """Start a new session for ``member`` (a new cookie: nothing of the old one is kept)."""
    session.clear()
    session[MEMBER], session[EPOCH] = member.id, member.session_epoch


def sign_out() -> None:
    """End the member's sessions, this one and every other (copies of its cookie included)."""
    member = current_member()
    if member is not None:
        members.end_sessions(member.id)
        sessions_ended(member.id)
    session.clear()


def sessions_ended(member_id: int) -> None:
    """After the member's session generation moved on (committed): the click's cache of
    generations forgets it, in this process at once and in the others through Redis."""
    current_app.extensions["sessions"].ended(member_id)


def current_member():
    """The signed-in member, or None; a session of an older generation is forgotten."""
    member_id = session.get(MEMBER)
    if member_id is None:
        return None
    member = queries.member(member_id)
    if member is None or member.session_epoch != session.get(EPOCH):
        session.pop(MEMBER)
        session.pop(EPOCH, None)
        return None
    return member


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
