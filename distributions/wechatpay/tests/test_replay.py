"""The notify log keeps WeChat Pay's signed headers with the body: an operator's replay
(`gmall-payment notifications replay`) verifies the signature as received, but not the
5-minute window; WeChat payments carry the seed's payment_type code (2)."""

import json
import time
import types

import pytest
from gmall_payment_wechatpay import apiv3
from sqlalchemy import update
from support.shop import csrf_token, make_app, member_orders, notify_log, snapshot
from wechat_support import KEYS, configured_settings, notification, transaction

from gmall_payment.adapters.sql.models import PaymentNotification, db

TOKEN = "operator-token-for-tests-0123456789"
SIGNED = {
    "Wechatpay-Nonce",
    "Wechatpay-Serial",
    "Wechatpay-Signature",
    "Wechatpay-Signature-Type",
    "Wechatpay-Timestamp",
}


@pytest.fixture
def shop(tmp_path):
    """A configured shop and one of its orders, with no WeChat payment yet, and the order's fen."""
    settings = configured_settings(tmp_path, KEYS["merchant"], KEYS["wechat"], KEYS["old"], KEYS["platform"])
    app = make_app(tmp_path, OPERATOR_TOKEN=TOKEN, **settings)
    order_sn = member_orders(app)[0]
    with app.app_context(), app.extensions["gmall"].payments.uow() as uow:
        fen = int(uow.orders.get(order_sn).pay_amount * 100)
    return app, order_sn, fen


def post(app, body, headers):
    return app.test_client().post(
        "/notify/wechatpay",
        data=body.encode(),
        headers={**headers, "Content-Type": "application/json", "X-Other": "not kept"},
    )


def start(app, order_sn):
    with app.app_context():
        return app.extensions["gmall"].payments.start(order_sn, "wechatpay")


def an_hour_later(monkeypatch):
    """The provider's clock an hour on: WeChat Pay's 5-minute window is long past."""
    later = time.time() + 3600
    monkeypatch.setattr(apiv3, "time", types.SimpleNamespace(time=lambda: later))


def paid_orders(app, order_sn):
    payments, orders, events = snapshot(app)
    return [p[1] for p in payments if p[0] == order_sn], [o[1] for o in orders if o[0] == order_sn], events


def test_the_notify_log_keeps_the_signed_headers_and_shows_them(shop):
    app, order_sn, fen = shop
    body, headers = notification(transaction(order_sn, fen), KEYS["wechat"])

    assert post(app, body, headers).status_code == 400  # no payment yet: unknown_trade

    [entry] = notify_log(app)
    assert (entry.outcome, entry.verified, entry.raw) == ("unknown_trade", True, body)
    assert json.loads(entry.headers) == {name: headers[name] for name in SIGNED}  # X-Other is not kept
    shown = app.test_cli_runner().invoke(args=["notifications", "show", str(entry.id)])
    assert shown.exit_code == 0, shown.output
    assert f'"Wechatpay-Signature": "{headers["Wechatpay-Signature"]}"' in shown.output
    assert '"event_type": "TRANSACTION.SUCCESS"' in shown.output  # the JSON body, field by field


def test_replay_of_a_kept_genuine_notification_whose_payment_now_exists_pays_it_once(shop, monkeypatch):
    app, order_sn, fen = shop
    body, headers = notification(transaction(order_sn, fen), KEYS["wechat"])
    assert post(app, body, headers).status_code == 400  # refused: its payment did not exist yet
    [kept] = notify_log(app)
    payment = start(app, order_sn)
    an_hour_later(monkeypatch)
    assert post(app, body, headers).status_code == 400  # over the network the copy is now stale
    assert notify_log(app)[-1].outcome == "stale_timestamp"
    runner = app.test_cli_runner()

    replayed = runner.invoke(args=["notifications", "replay", str(kept.id)])
    paid = snapshot(app)
    again = runner.invoke(args=["notifications", "replay", str(kept.id)])

    assert replayed.exit_code == 0 and f"#{notify_log(app)[2].id}: paid -> " in replayed.output, (
        replayed.output
    )
    assert again.exit_code == 0 and ": duplicate -> " in again.output, again.output
    assert [(e.outcome, e.replay_of) for e in notify_log(app)] == [
        ("unknown_trade", None),
        ("stale_timestamp", None),
        ("paid", kept.id),
        ("duplicate", kept.id),
    ]
    assert paid_orders(app, order_sn)[:2] == ([1], [1]) and snapshot(app) == paid  # paid once
    with app.app_context(), app.extensions["gmall"].payments.uow() as uow:
        assert uow.payments.get(payment.id).trade_no == "4200000000202411110000000001"


def test_a_notification_refused_as_stale_when_it_came_is_paid_by_an_operator_s_replay(shop):
    app, order_sn, fen = shop
    start(app, order_sn)
    body, headers = notification(
        transaction(order_sn, fen), KEYS["wechat"], timestamp=int(time.time()) - 3600
    )
    assert post(app, body, headers).status_code == 400
    [kept] = notify_log(app)
    assert (kept.outcome, kept.verified) == ("stale_timestamp", True)

    replayed = app.test_cli_runner().invoke(args=["notifications", "replay", str(kept.id)])

    assert ": paid -> " in replayed.output, replayed.output
    assert paid_orders(app, order_sn)[:2] == ([1], [1])


def tamper_body(entry):
    return {"raw": entry.raw.replace('"summary": "支付成功"', '"summary": "支付成功了"')}


def tamper_signature(entry):
    headers = json.loads(entry.headers)
    other = notification(transaction(entry.out_trade_no or "x", 1), KEYS["wechat"])[1]["Wechatpay-Signature"]
    return {"headers": json.dumps({**headers, "Wechatpay-Signature": other})}


def tamper_timestamp(entry):
    headers = json.loads(entry.headers)
    return {
        "headers": json.dumps(
            {**headers, "Wechatpay-Timestamp": str(int(headers["Wechatpay-Timestamp"]) + 1)}
        )
    }


def drop_headers(entry):
    return {"headers": None}  # as a notification kept before the headers were


@pytest.mark.parametrize("tamper", [tamper_body, tamper_signature, tamper_timestamp, drop_headers])
def test_a_kept_notification_tampered_in_the_log_is_still_refused_and_changes_nothing(
    shop, monkeypatch, tamper
):
    app, order_sn, fen = shop
    body, headers = notification(transaction(order_sn, fen), KEYS["wechat"])
    post(app, body, headers)
    [kept] = notify_log(app)
    start(app, order_sn)
    with app.app_context():
        db.session.execute(
            update(PaymentNotification).where(PaymentNotification.id == kept.id).values(**tamper(kept))
        )
        db.session.commit()
    an_hour_later(monkeypatch)
    before = snapshot(app)

    replayed = app.test_cli_runner().invoke(args=["notifications", "replay", str(kept.id)])

    assert ": bad_signature -> " in replayed.output, replayed.output
    assert snapshot(app) == before and paid_orders(app, order_sn)[:2] == ([0], [0])
    assert [(e.outcome, e.verified, e.replay_of) for e in notify_log(app)][1:] == [
        ("bad_signature", False, kept.id)
    ]


def test_a_notification_tampered_when_it_came_is_refused_again_when_replayed(shop):
    app, order_sn, fen = shop
    body, headers = notification(
        transaction(order_sn, fen), KEYS["wechat"], tamper=lambda text: text.replace("支付成功", "支付成功了")
    )
    start(app, order_sn)
    assert post(app, body, headers).status_code == 400
    [kept] = notify_log(app)
    before = snapshot(app)

    replayed = app.test_cli_runner().invoke(args=["notifications", "replay", str(kept.id)])

    assert ": bad_signature -> " in replayed.output, replayed.output
    assert snapshot(app) == before
    assert [(e.outcome, e.replay_of) for e in notify_log(app)] == [
        ("bad_signature", None),
        ("bad_signature", kept.id),
    ]


# the seed's payment_type


def test_a_wechat_payment_records_the_seed_s_payment_type_code(shop):
    app, order_sn, _ = shop
    payment = start(app, order_sn)
    assert payment.payment_type_code == 2

    shown = app.test_cli_runner().invoke(args=["payments", "show", str(payment.id)])
    assert "  payment_type 2 (the seed's code of wechatpay)\n" in shown.output, shown.output
    page = app.test_client()
    form = page.get("/operator/login")
    page.post("/operator/login", data={"token": TOKEN, "csrf_token": csrf_token(form.text)})
    assert '<dd id="payment-type-code">2</dd>' in page.get(f"/operator/payments/{payment.id}").text
