"""Log in as a demo member and see "my orders" with their payment, stock and points effects."""

import functools
import secrets

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.security import check_password_hash, generate_password_hash

from ..adapters.sql import queries
from .context import current_member, require_member, services, sign_in, sign_out
from .ids import MAX_ID
from .redirects import local_path
from .throttles import throttles, too_many_attempts

bp = Blueprint("storefront", __name__)


@bp.app_errorhandler(401)
def login_first(_error):
    here = request.full_path if request.query_string else request.path  # full_path ends in "?" without one
    return redirect(url_for("storefront.login", next=here))


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for it on every site, the sandboxes' pages too."""
    return redirect(url_for("static", filename="favicon.svg"), code=301)


@bp.get("/")
def index():
    if current_member() is None:
        return redirect(url_for("storefront.login"))
    return redirect(url_for("storefront.orders"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        target = local_path(request.args.get("next"))  # a bad one is a 400 before anyone logs in
        username, address = request.form.get("username", ""), request.remote_addr or ""
        throttle = throttles().login
        wait = throttle.attempt("member", username, address)
        if wait is not None:
            return too_many_attempts(wait, "login.html")
        member = queries.member_by_username(username)
        if _password_holds(member, request.form.get("password", "")):
            throttle.succeeded("member", username)
            sign_in(member)
            return redirect(target or url_for("storefront.orders"))
        throttle.failed("member", address)
        flash("用户名或密码错误 / wrong username or password")
    return render_template("login.html")


@functools.cache
def _no_member_hash() -> str:
    return generate_password_hash(secrets.token_hex(16))


def _password_holds(member, password: str) -> bool:
    """Whether ``password`` is the member's; as slow for no member (no telling who exists)."""
    if member is None:
        check_password_hash(_no_member_hash(), password)
        return False
    return check_password_hash(member.password_hash, password)


@bp.post("/logout")
def logout():
    """End the member's sessions for good: every copy of the cookie is refused afterwards."""
    sign_out()
    return redirect(url_for("storefront.login"))


@bp.get("/orders")
def orders():
    """A page of the member's orders, newest first; ``?before=ID`` the page of those older."""
    member = require_member()
    before = request.args.get("before", type=int)
    orders, older = queries.member_orders(
        member.id, before=before if before and 0 < before <= MAX_ID else None
    )
    return render_template(
        "orders.html",
        member=member,
        orders=orders,
        older=older,
        paged=before is not None,
        stock=queries.stock_levels(item["sku_id"] for order in orders for item in order["items"]),
        provider_titles={provider.name: provider.title for provider in services().providers},
    )
