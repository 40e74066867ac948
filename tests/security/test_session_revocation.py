"""Finding 8 (sessions): a session cookie copied before ``POST /logout`` still worked after it,
on every page and on the flash sale's click. Logging out, and a password change, now end the
member's sessions for good: the member's session generation in the database moves on, and
every page and both click paths compare the cookie's with it."""

import pytest
from sqlalchemy import select
from support.forms import copied, log_in, log_out, logged_in, set_password
from support.seckill_web import JSON, SKU, preheated
from support.shop import make_app, member_orders

from gmall_payment.adapters.sql.demo import SALE_UNITS
from gmall_payment.adapters.sql.models import Member, db

#: Prefers JSON but names a text type: the click's Flask view answers, not click_path.
JSON_VIA_FLASK = {"Accept": "application/json, text/plain;q=0.5"}
BROWSER = {"Accept": "text/html", "Sec-Fetch-Site": "same-origin"}


def assert_signed_out(app, client, order_sn):
    """Every page, the API and both click paths treat ``client`` as a stranger; nothing reserved."""
    assert client.get("/orders").location.startswith("/login")
    assert client.get(f"/pay.html?orderToken={order_sn}").location.startswith("/login")
    assert client.get(f"/api/orders/{order_sn}").status_code == 401
    assert client.get(f"/seckill/orders/{order_sn}", headers=JSON).status_code == 401
    assert client.get(f"/seckill/pay?orderSn={order_sn}").location.startswith("/login")
    for headers in (JSON, JSON_VIA_FLASK):
        click = client.get(f"/seckill/{SKU}", headers=headers)
        assert (click.status_code, click.json["outcome"]) == (401, "not_logged_in")
    assert client.get(f"/seckill/{SKU}", headers=BROWSER).location.startswith("/login")
    assert preheated(client)["units_left"] == SALE_UNITS


def test_a_cookie_copied_before_logout_fails_after_it(app):
    demo = logged_in(app)
    preheated(demo)
    order_sn = member_orders(app)[0]
    thief = copied(app, demo)
    assert thief.get(f"/api/orders/{order_sn}").status_code == 200  # the copy works while signed in

    log_out(demo)

    assert_signed_out(app, thief, order_sn)
    assert_signed_out(app, demo, order_sn)
    assert logged_in(app).get(f"/api/orders/{order_sn}").status_code == 200  # signing in again works


def test_logging_out_ends_the_members_other_sessions_too(app):
    laptop, phone = logged_in(app), logged_in(app)
    log_out(laptop)
    assert phone.get("/orders").location.startswith("/login")


def test_the_revocation_is_kept_in_the_database(app, tmp_path):
    """Another process (a fresh app on the same database: no memory of the logout) refuses the
    copy too; no Redis or cache holds the truth."""
    demo = logged_in(app)
    order_sn = member_orders(app)[0]
    saved = demo.get_cookie("session").value
    log_out(demo)

    other = make_app(tmp_path)
    try:
        thief = other.test_client()
        thief.set_cookie("session", saved)
        assert thief.get(f"/api/orders/{order_sn}").status_code == 401
        assert thief.get(f"/seckill/{SKU}", headers=JSON).status_code == 401
    finally:
        other.extensions["gmall"].bus.close()


def test_a_password_change_ends_every_session_and_takes_the_new_password(app):
    demo = logged_in(app)
    preheated(demo)
    order_sn = member_orders(app)[0]
    thief = copied(app, demo)

    result = set_password(app, "demo", "a new secret")

    assert result.exit_code == 0, result.output
    assert "demo" in result.output and "a new secret" not in result.output
    assert_signed_out(app, thief, order_sn)
    assert_signed_out(app, demo, order_sn)
    stale = app.test_client()
    log_in(stale, "demo", "demo123")  # the old password no longer logs in
    assert stale.get("/orders").location.startswith("/login")
    assert logged_in(app, "demo", "a new secret").get("/orders").status_code == 200


@pytest.mark.parametrize(
    ("username", "password", "confirm", "says"),
    [
        ("nobody", "a new secret", None, "no member named nobody"),
        ("demo", "short", None, "at least 8 characters"),
        ("demo", "a new secret", "another one", "do not match"),
    ],
)
def test_a_password_change_that_cannot_be_made_says_why_and_changes_nothing(
    app, username, password, confirm, says
):
    demo = logged_in(app)
    with app.app_context():
        before = db.session.scalar(select(Member.password_hash).where(Member.username == "demo"))

    result = set_password(app, username, password, confirm)

    assert result.exit_code != 0 and says in result.output
    with app.app_context():
        assert db.session.scalar(select(Member.password_hash).where(Member.username == "demo")) == before
    assert demo.get("/orders").status_code == 200
