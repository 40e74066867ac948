"""Forged, tampered and replayed notifications are answered `failure` and change nothing."""

import pytest
from sqlalchemy import select
from support.shop import notify_params, snapshot

from gmall_payment.adapters.sql.models import Member, Order, PaymentInfo, db
from gmall_payment.plugins import rsa2


@pytest.fixture
def started(app):
    """Two of demo's orders with mockpay payments started, and the sandbox's signing key."""
    with app.app_context():
        member = db.session.scalar(select(Member).where(Member.username == "demo"))
        orders = db.session.scalars(
            select(Order).where(Order.member_id == member.id).order_by(Order.id)
        ).all()
        payments = [app.extensions["gmall"].payments.start(o.order_sn, "mockpay") for o in orders[:2]]
    return payments, app.extensions["gmall"].providers.get("mockpay").config.private_key


def test_authentic_notify_is_accepted_once(app, started, client):
    (payment, _), key = started
    params = notify_params(payment, key)
    first = client.post("/notify/mockpay", data=params)
    app.extensions["gmall"].bus.join()
    after_first = snapshot(app)
    second = client.post("/notify/mockpay", data=params)  # the provider retrying
    app.extensions["gmall"].bus.join()
    assert (first.status_code, first.text, second.text) == (200, "success", "success")
    assert first.content_type.startswith("text/plain")
    assert snapshot(app) == after_first
    assert after_first[2] == 2  # payment.succeeded and order.paid, once each


def forgeries(payments, key):
    mine, other = payments
    return {
        "bad_signature": {**notify_params(mine, key), "total_amount": "0.01"},
        "wrong_key": notify_params(mine, rsa2.generate_key_pair()[0]),
        "amount_mismatch": notify_params(mine, key, total_amount="0.01"),
        "unknown_trade": notify_params(mine, key, out_trade_no="20991231000000000000"),
        "wrong_app": notify_params(mine, key, app_id="someone-else"),
        # other's authentic notify, replayed with mine's trade number: signature breaks
        "replayed": {**notify_params(other, key), "out_trade_no": mine.out_trade_no},
        "malformed": notify_params(mine, key, total_amount="12.345"),
        "unsigned": {k: v for k, v in notify_params(mine, key).items() if k != "sign"},
    }


@pytest.mark.parametrize(
    "kind",
    [
        "bad_signature",
        "wrong_key",
        "amount_mismatch",
        "unknown_trade",
        "wrong_app",
        "replayed",
        "malformed",
        "unsigned",
    ],
)
def test_forged_notify_is_refused_and_changes_nothing(app, started, kind, caplog, client):
    payments, key = started
    before = snapshot(app)
    response = client.post("/notify/mockpay", data=forgeries(payments, key)[kind])
    app.extensions["gmall"].bus.join()
    assert (response.status_code, response.text) == (200, "failure")
    assert snapshot(app) == before
    reasons = {"wrong_key": "bad_signature", "replayed": "bad_signature", "unsigned": "bad_signature"}
    assert f"rejected: {reasons.get(kind, kind)}" in caplog.text


def test_another_orders_notify_pays_only_that_order(app, started, client):
    (mine, other), key = started
    response = client.post("/notify/mockpay", data=notify_params(other, key))
    app.extensions["gmall"].bus.join()
    assert response.text == "success"
    with app.app_context():
        statuses = {p.order_sn: p.payment_status for p in db.session.scalars(select(PaymentInfo))}
    assert statuses == {mine.order_sn: 0, other.order_sn: 1}


def test_notify_for_an_unknown_provider_is_404(client):
    assert client.post("/notify/nopay", data={"a": "b"}).status_code == 404


def test_notify_needs_no_csrf_token_but_forms_do(app, started, client):
    (payment, _), _ = started
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post("/notify/mockpay", data={}).text == "failure"
    assert client.post("/login", data={"username": "demo", "password": "demo123"}).status_code == 400
