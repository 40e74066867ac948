"""Notifications made here with cryptography alone: the genuine ones are believed (public-key
mode, a rotated key, certificate mode); every tampered one is refused, with nothing changed; a
trade WeChat Pay did not pay is logged and pays nothing; one the shop fails to handle is a 5xx."""

import json
import time
from decimal import Decimal

import pytest
from gmall_payment_wechatpay.config import WechatPayConfig
from gmall_payment_wechatpay.provider import WechatPayProvider
from sqlalchemy import text
from support.shop import make_app, member_orders, notify_log, snapshot
from wechat_support import (
    CERT_SERIAL,
    KEYS,
    MCHID,
    OLD_PUB_KEY_ID,
    PUB_KEY_ID,
    configured_settings,
    notification,
    transaction,
)

from gmall_payment.adapters.sql.models import db
from gmall_payment.core.errors import NotificationRejected, RefundPending
from gmall_payment.core.model import TradeStatus


@pytest.fixture
def settings(tmp_path):
    return configured_settings(tmp_path, KEYS["merchant"], KEYS["wechat"], KEYS["old"], KEYS["platform"])


@pytest.fixture
def provider(settings, tmp_path):
    return WechatPayProvider(WechatPayConfig.from_settings({**settings, "INSTANCE_PATH": str(tmp_path)}))


@pytest.mark.parametrize(
    ("key", "serial"), [("wechat", PUB_KEY_ID), ("old", OLD_PUB_KEY_ID), ("platform", CERT_SERIAL)]
)
def test_a_genuine_notification_is_believed_with_any_configured_key(provider, key, serial):
    body, headers = notification(transaction("202411110001", 12345), KEYS[key], serial=serial)
    parsed = provider.parse_notification_request({}, body, headers)
    assert (parsed.out_trade_no, str(parsed.total_amount), parsed.status) == (
        "202411110001",
        "123.45",
        TradeStatus.PAID,
    )
    assert parsed.trade_no == "4200000000202411110000000001" and parsed.notify_id == json.loads(body)["id"]


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("CLOSED", TradeStatus.CLOSED),
        ("REVOKED", TradeStatus.CLOSED),
        ("PAYERROR", TradeStatus.PENDING),
        ("NOTPAY", TradeStatus.PENDING),
    ],
)
def test_trade_states_in_our_words(provider, state, status):
    body, headers = notification(transaction("202411110001", 100, trade_state=state), KEYS["wechat"])
    assert provider.parse_notification_request({}, body, headers).status is status


def spoilt(case, out_trade_no="202411110001", fen=12345):
    """(body, headers, reason) of a notification about ``out_trade_no`` spoilt as ``case`` says."""
    plain = transaction(out_trade_no, fen)
    cases = {
        "tampered_body": (dict(tamper=lambda body: body.replace("支付成功", "支付成功了")), "bad_signature"),
        "wrong_key": (dict(key=KEYS["stranger"]), "bad_signature"),
        "unknown_serial": (dict(serial="PUB_KEY_ID_0000000000"), "bad_signature"),
        "stale_timestamp": (dict(timestamp=int(time.time()) - 301), "stale_timestamp"),
        "future_timestamp": (dict(timestamp=int(time.time()) + 400), "stale_timestamp"),
        "wrong_apiv3_key": (dict(apiv3_key="another-32-characters-key-012345"), "undecryptable"),
        "wrong_associated_data": (
            dict(
                associated_data="refund",
                tamper=lambda b: b.replace('"associated_data": "refund"', '"associated_data": "transaction"'),
            ),
            "bad_signature",
        ),
        "wrong_appid": (dict(plain=transaction(out_trade_no, fen, appid="wx0000000000000bad")), "wrong_app"),
        "wrong_mchid": (dict(plain=transaction(out_trade_no, fen, mchid="1900000bad")), "wrong_merchant"),
        "amount_as_text": (
            dict(plain=transaction(out_trade_no, fen, amount={"total": str(fen)})),
            "malformed",
        ),
        "amount_as_float": (
            dict(plain=transaction(out_trade_no, fen, amount={"total": fen / 100})),
            "malformed",
        ),
        "unknown_state": (dict(plain=transaction(out_trade_no, fen, trade_state="PAID")), "unknown_status"),
    }
    options, reason = cases[case]
    options = {"plain": plain, "key": KEYS["wechat"], **options}
    return (*notification(options.pop("plain"), options.pop("key"), **options), reason)


CASES = [
    "tampered_body",
    "wrong_key",
    "unknown_serial",
    "stale_timestamp",
    "future_timestamp",
    "wrong_apiv3_key",
    "wrong_associated_data",
    "wrong_appid",
    "wrong_mchid",
    "amount_as_text",
    "amount_as_float",
    "unknown_state",
]


@pytest.mark.parametrize("case", CASES)
def test_a_spoilt_notification_is_refused_with_its_reason(provider, case):
    body, headers, reason = spoilt(case)
    with pytest.raises(NotificationRejected) as refused:
        provider.parse_notification_request({}, body, headers)
    assert refused.value.reason == reason


def test_a_form_alone_is_never_believed(provider):
    with pytest.raises(NotificationRejected, match="bad_signature"):
        provider.parse_notification({"out_trade_no": "202411110001", "trade_state": "SUCCESS"})


@pytest.fixture
def shop(tmp_path, settings):
    app = make_app(tmp_path, **settings)
    order_sn = member_orders(app)[0]
    with app.app_context():
        payment = app.extensions["gmall"].payments.start(order_sn, "wechatpay")
    return app, payment


def post(app, body, headers):
    return app.test_client().post(
        "/notify/wechatpay", data=body.encode(), headers={**headers, "Content-Type": "application/json"}
    )


@pytest.mark.parametrize("case", [*CASES, "amount_mismatch", "unknown_trade"])
def test_the_shop_refuses_each_spoilt_notification_and_changes_nothing(shop, case):
    app, payment = shop
    fen = int(payment.total_amount * 100)
    if case == "amount_mismatch":
        body, headers = notification(transaction(payment.out_trade_no, fen - 1), KEYS["wechat"])
        reason = "amount_mismatch"
    elif case == "unknown_trade":
        body, headers = notification(transaction("209900000000", fen), KEYS["wechat"])
        reason = "unknown_trade"
    else:
        body, headers, reason = spoilt(case, payment.out_trade_no, fen)
    before = snapshot(app)
    response = post(app, body, headers)
    assert response.status_code == 400
    assert response.get_json() == {"code": "FAIL", "message": "notification refused"}
    assert snapshot(app) == before
    [entry] = notify_log(app)
    assert (entry.outcome, entry.accepted, entry.verified, entry.raw) == (
        reason,
        False,
        reason != "bad_signature",
        body,
    )


def test_the_genuine_notification_pays_and_its_copy_is_a_duplicate(shop):
    app, payment = shop
    body, headers = notification(
        transaction(payment.out_trade_no, int(payment.total_amount * 100)), KEYS["wechat"]
    )
    first, second = post(app, body, headers), post(app, body, headers)
    assert (first.status_code, first.data, second.status_code) == (204, b"", 204)
    assert [(e.outcome, e.accepted, e.verified) for e in notify_log(app)] == [
        ("paid", True, True),
        ("duplicate", True, True),
    ]
    assert [p[1] for p in snapshot(app)[0] if p[0] == payment.order_sn] == [1]


@pytest.mark.parametrize(
    ("state", "status", "outcome"),
    [("CLOSED", 2, "closed"), ("REVOKED", 2, "closed"), ("PAYERROR", 0, "recorded")],
)
def test_a_trade_that_was_not_paid_is_logged_and_the_payment_left_as_wechat_pay_says(
    shop, state, status, outcome
):
    app, payment = shop
    plain = transaction(
        payment.out_trade_no, int(payment.total_amount * 100), trade_state=state, transaction_id=""
    )
    body, headers = notification(plain, KEYS["wechat"])
    payments, orders, events = snapshot(app)

    answer = post(app, body, headers)

    assert (answer.status_code, answer.data) == (204, b"")
    [entry] = notify_log(app)
    assert (entry.outcome, entry.accepted, entry.verified, entry.raw) == (outcome, True, True, body)
    assert snapshot(app) == (  # the payment closed (CLOSED, REVOKED) or still open; the order unpaid
        [(sn, status if sn == payment.order_sn else was, trade_no) for sn, was, trade_no in payments],
        orders,
        events,
    )


def test_a_genuine_notification_the_shop_fails_to_handle_is_refused_with_a_5xx_so_it_comes_again(shop):
    app, payment = shop
    body, headers = notification(
        transaction(payment.out_trade_no, int(payment.total_amount * 100)), KEYS["wechat"]
    )
    with app.app_context():  # a real database error whenever a payment moves
        db.session.execute(
            text(
                "CREATE TRIGGER test_payment_fails BEFORE UPDATE ON payment_info "
                "BEGIN SELECT RAISE(ABORT, 'injected: payment_info is unavailable'); END"
            )
        )
        db.session.commit()
    before = snapshot(app)

    failed = post(app, body, headers)

    assert failed.status_code == 500  # WeChat Pay sends it again on its retry series
    assert failed.get_json() == {"code": "FAIL", "message": "notification refused"}
    assert snapshot(app) == before
    with app.app_context():
        db.session.execute(text("DROP TRIGGER test_payment_fails"))
        db.session.commit()
    again = post(app, body, headers)  # the retry, once the database is back
    assert (again.status_code, [e.outcome for e in notify_log(app)]) == (204, ["paid"])
    assert [p[1] for p in snapshot(app)[0] if p[0] == payment.order_sn] == [1]


def refund_notice(out_trade_no, out_refund_no, fen, total, state):
    plain = {
        "mchid": MCHID,
        "out_trade_no": out_trade_no,
        "transaction_id": "4200000000202411110000000001",
        "out_refund_no": out_refund_no,
        "refund_id": "50300000000000000000000000001",
        "refund_status": state,
        "user_received_account": "支付用户零钱",
        "amount": {"total": total, "refund": fen, "payer_total": total, "payer_refund": fen},
    }
    return notification(plain, KEYS["wechat"], event_type=f"REFUND.{state}", associated_data="refund")


@pytest.mark.parametrize(
    ("state", "status", "outcome"),
    [("SUCCESS", 1, "refunded"), ("ABNORMAL", 2, "refund_failed"), ("CLOSED", 2, "refund_failed")],
)
def test_a_refund_notification_settles_the_pending_refund(shop, state, status, outcome):
    app, payment = shop
    fen = int(payment.total_amount * 100)
    post(app, *notification(transaction(payment.out_trade_no, fen), KEYS["wechat"]))
    refunds = app.extensions["gmall"].refunds
    with app.app_context(), pytest.raises(RefundPending):  # WECHATPAY_API_URL answers nothing: no answer yet
        refunds.refund(payment.id, Decimal("1.00"), "R-1")
    answer = post(app, *refund_notice(payment.out_trade_no, "R-1", 100, fen, state))
    again = post(app, *refund_notice(payment.out_trade_no, "R-1", 100, fen, state))
    assert (answer.status_code, again.status_code) == (204, 204)
    with app.app_context():
        [refund] = refunds.refunds(payment.id)
        settled = app.extensions["gmall"].payments.uow().payments.get(payment.id)
    assert refund.status == status
    assert (settled.refunded, settled.refund_reserved) == ((Decimal("1.00"),) * 2 if status == 1 else (0, 0))
    assert [e.outcome for e in notify_log(app)][1:] == [outcome, "duplicate"]


def test_a_refund_notification_for_a_refund_never_asked_for_flags_the_payment(shop):
    app, payment = shop
    fen = int(payment.total_amount * 100)
    post(app, *notification(transaction(payment.out_trade_no, fen), KEYS["wechat"]))
    assert post(app, *refund_notice(payment.out_trade_no, "R-X", 100, fen, "SUCCESS")).status_code == 204
    with app.app_context():
        settled = app.extensions["gmall"].payments.uow().payments.get(payment.id)
    assert "never asked for" in settled.flag and settled.refunded == 0
    assert notify_log(app)[-1].outcome == "unknown_refund"
