"""Log in as a demo member and see "my orders" with their payment, stock and points effects."""

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from werkzeug.security import check_password_hash

from ..adapters.sql import queries
from .context import current_member, require_member

bp = Blueprint("storefront", __name__)


@bp.app_errorhandler(401)
def login_first(_error):
    return redirect(url_for("storefront.login", next=request.full_path))


@bp.get("/")
def index():
    if current_member() is None:
        return redirect(url_for("storefront.login"))
    return redirect(url_for("storefront.orders"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        member = queries.member_by_username(request.form.get("username", ""))
        if member is not None and check_password_hash(member.password_hash, request.form.get("password", "")):
            session.clear()
            session["member_id"] = member.id
            return redirect(_local(request.args.get("next")) or url_for("storefront.orders"))
        flash("用户名或密码错误 / wrong username or password")
    return render_template("login.html")


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("storefront.login"))


@bp.get("/orders")
def orders():
    member = require_member()
    return render_template(
        "orders.html", member=member, orders=queries.member_orders(member.id), stock=queries.stock_levels()
    )


def _local(target):
    """Only same-site paths may be a post-login destination (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None
