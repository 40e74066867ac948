"""Every tampered or replayed Alipay notify is answered `failure`, changes nothing, and is logged."""

from urllib.parse import urlencode

import pytest
from support.alipay import signed_notify as notify
from support.shop import member_orders, notify_log, snapshot

from gmall_payment.plugins import rsa2
from gmall_payment.plugins.alipay.config import gateway_key_pair


@pytest.fixture
def started(app):
    """Two of demo's orders with Alipay payments started (embedded default: the offline gateway's keys)."""
    with app.app_context():
        payments = [app.extensions["gmall"].payments.start(sn, "alipay") for sn in member_orders(app)[:2]]
    return payments, gateway_key_pair(app.config)[0], app.extensions["gmall"].providers.get("alipay").config


def forgeries(payments, key, config):
    mine, other = payments
    authentic = notify(mine, key, config)
    return {
        "changed_amount": ({**authentic, "total_amount": "0.01"}, "bad_signature"),
        "signed_other_amount": (notify(mine, key, config, total_amount="0.01"), "amount_mismatch"),
        "changed_out_trade_no": ({**authentic, "out_trade_no": other.out_trade_no}, "bad_signature"),
        "signed_unknown_out_trade_no": (
            notify(mine, key, config, out_trade_no="20991231000000000000"),
            "unknown_trade",
        ),
        "other_app_id": (notify(mine, key, config, app_id="2021999999999999"), "wrong_app"),
        "other_seller": (notify(mine, key, config, seller_id="2088999999999999"), "wrong_seller"),
        "bad_signature": ({**authentic, "sign": authentic["sign"][:-4] + "AAA="}, "bad_signature"),
        "wrong_key": (notify(mine, rsa2.generate_key_pair()[0], config), "bad_signature"),
        "replay_of_another_order": (
            {**notify(other, key, config), "out_trade_no": mine.out_trade_no},
            "bad_signature",
        ),
        "other_amount_only_buyer_pay_matches": (  # the seed compared buyer_pay_amount: we compare total_amount
            notify(mine, key, config, total_amount="0.01", buyer_pay_amount=f"{mine.total_amount:.2f}"),
            "amount_mismatch",
        ),
        "unsigned": ({k: v for k, v in authentic.items() if k != "sign"}, "bad_signature"),
        "rsa1": ({**authentic, "sign_type": "RSA"}, "bad_signature"),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "changed_amount",
        "signed_other_amount",
        "changed_out_trade_no",
        "signed_unknown_out_trade_no",
        "other_app_id",
        "other_seller",
        "bad_signature",
        "wrong_key",
        "replay_of_another_order",
        "other_amount_only_buyer_pay_matches",
        "unsigned",
        "rsa1",
    ],
)
@pytest.mark.parametrize("route", ["/pay/success", "/notify/alipay"])
def test_tampered_notify_is_refused_changes_nothing_and_is_logged(app, started, kind, route, client):
    payments, key, config = started
    params, reason = forgeries(payments, key, config)[kind]
    before = snapshot(app)

    response = client.post(route, data=params)
    app.extensions["gmall"].bus.join()

    assert (response.status_code, response.text) == (200, "failure")
    assert response.content_type.startswith("text/plain")
    assert snapshot(app) == before
    [entry] = notify_log(app)
    assert (entry.provider, entry.outcome, entry.accepted) == ("alipay", reason, False)
    assert entry.verified is (reason != "bad_signature")
    assert entry.notify_id == params.get("notify_id")


def test_authentic_notify_pays_once_and_duplicates_are_recognised(app, started, client):
    (mine, other), key, config = started
    params = notify(mine, key, config)
    answers = [client.post("/pay/success", data=params).text for _ in range(3)]
    app.extensions["gmall"].bus.join()

    assert answers == ["success"] * 3
    payments, orders, events = snapshot(app)
    assert {sn: status for sn, status, _ in payments} == {mine.order_sn: 1, other.order_sn: 0}
    assert events == 2  # payment.succeeded and order.paid, once
    assert [(e.outcome, e.verified, e.accepted) for e in notify_log(app)] == [
        ("paid", True, True),
        ("duplicate", True, True),
        ("duplicate", True, True),
    ]


def test_the_raw_body_is_kept_as_posted(app, started, client):
    (mine, _), key, config = started
    params = notify(mine, key, config, subject="谷粒商城-手机 & 充电器", passback_params="")
    body = urlencode(params)
    response = client.post("/pay/success", data=body, content_type="application/x-www-form-urlencoded")
    assert response.text == "success"  # an empty passback_params is left out of the signature
    [entry] = notify_log(app)
    assert entry.raw == body and entry.outcome == "paid"


def test_wait_buyer_pay_is_recorded_trade_closed_closes_and_money_after_that_counts(app, started, client):
    (mine, other), key, config = started
    assert (
        client.post("/pay/success", data=notify(mine, key, config, trade_status="WAIT_BUYER_PAY")).text
        == "success"
    )
    assert (
        client.post("/pay/success", data=notify(other, key, config, trade_status="TRADE_CLOSED")).text
        == "success"
    )
    payments, _, events = snapshot(app)
    assert {sn: status for sn, status, _ in payments} == {mine.order_sn: 0, other.order_sn: 2}
    assert events == 0
    # The provider took the money after all: recorded (its order is still open, so it pays it).
    assert (
        client.post("/pay/success", data=notify(other, key, config, trade_status="TRADE_FINISHED")).text
        == "success"
    )
    payments, _, events = snapshot(app)
    assert {sn: status for sn, status, _ in payments} == {mine.order_sn: 0, other.order_sn: 1}
    assert events >= 1
    assert [e.outcome for e in notify_log(app)] == ["recorded", "closed", "paid"]
