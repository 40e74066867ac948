"""Finding 2: mockpay's sandbox was an unauthenticated signing service.

``POST /mockpay/cashier`` with any trade, ``notify_url`` and ``return_url`` made the shop's
server post validly signed TRADE_SUCCESS notifications wherever the form said (server-side
request forgery) and sent the shopper to a foreign ``return_url`` (open redirect); ``POST
/mockpay/api`` closed another member's open trade with no credential. Now the cashier pays
only trades the shop opened by a signed call at checkout, with the notify and return URLs of
that call, and the API verifies a signature on every request.
"""

from datetime import datetime
from urllib.parse import urlsplit

import pytest
from support.forms import logged_in
from support.servers import receiving, serving
from support.shop import (
    browser_login,
    csrf_token,
    make_app,
    member_orders,
    open_order,
    pay_on_cashier,
    wait_until_fulfilled,
)

from gmall_payment.plugins import rsa2

EVIL = "https://evil.example/phish"


def check_out(browser, order_sn):
    """The shopper chooses mockpay: the shop opens the trade and sends them to the cashier."""
    pay_page = browser.get("/pay.html", query_string={"orderToken": order_sn})
    started = browser.post(
        "/pay/mockpay", data={"orderToken": order_sn, "csrf_token": csrf_token(pay_page.text)}
    )
    assert started.status_code == 303, started.text
    return started.headers["Location"]


def sandbox(app):
    return app.wsgi_app.mounts["/mockpay"]


@pytest.fixture(scope="module")
def other_key_pair():
    return rsa2.generate_key_pair()


@pytest.fixture
def receiver():
    """An address of the attacker's choosing that records what is posted to it."""
    with receiving("/collect") as attacker:
        yield attacker


def forged_cashier_post(receiver, out_trade_no, **changes):
    return {
        "app_id": "mockpay-sandbox",
        "out_trade_no": out_trade_no,
        "total_amount": "0.01",
        "subject": "anything",
        "notify_url": receiver.url,
        "return_url": EVIL,
        "action": "pay",
        "scenario": "duplicate",
        **changes,
    }


def test_the_cashier_signs_nothing_for_a_trade_the_shop_never_opened(app, client, receiver):
    """SSRF: an unknown trade with the attacker's notify_url is refused, nothing is posted."""
    answer = client.post("/mockpay/cashier", data=forged_cashier_post(receiver, "ATTACKER-0001"))

    assert answer.status_code == 404
    assert "ATTACKER-0001" in answer.text and "Location" not in answer.headers
    assert sandbox(app).notifier.join(5)
    assert receiver.received == [] and sandbox(app).notifier.attempts == []
    assert sandbox(app).ledger.trade("ATTACKER-0001") is None


def test_the_cashier_notifies_only_the_url_the_shop_gave_at_checkout(app, receiver):
    """SSRF on a real trade: the form's notify_url counts for nothing, the shop's is used."""
    order_sn = member_orders(app)[0]
    browser = logged_in(app)
    cashier = check_out(browser, order_sn)
    assert urlsplit(cashier).query == f"out_trade_no={order_sn}"  # the trade's reference, nothing else

    answer = browser.post("/mockpay/cashier", data=forged_cashier_post(receiver, order_sn))

    assert answer.status_code == 303
    assert sandbox(app).notifier.join(10)
    assert receiver.received == []
    assert {attempt.url for attempt in sandbox(app).notifier.attempts} == {"http://localhost/notify/mockpay"}


def test_the_cashier_never_redirects_to_a_foreign_return_url(app, receiver):
    """Open redirect: the shopper goes back to the shop's return URL whatever the form says."""
    order_sn = member_orders(app)[0]
    browser = logged_in(app)
    check_out(browser, order_sn)
    unknown = browser.post(
        "/mockpay/cashier", data=forged_cashier_post(receiver, "ATTACKER-0002", action="cancel")
    )
    for action in ("cancel", "fail", "pay"):
        answer = browser.post("/mockpay/cashier", data=forged_cashier_post(receiver, order_sn, action=action))
        assert answer.status_code == 303
        assert answer.headers["Location"].startswith("http://localhost/pay/return/mockpay?"), answer.headers

    assert unknown.status_code == 404 and "Location" not in unknown.headers
    assert sandbox(app).notifier.join(10)


def test_the_sandbox_api_refuses_an_unsigned_close_of_another_members_trade(app, receiver, other_key_pair):
    """Unauthenticated close: alice's open trade stays open, whoever asks without the shop's key."""
    order_sn = member_orders(app, "alice")[0]
    cashier = logged_in(app, "alice").get(check_out(logged_in(app, "alice"), order_sn))
    assert cashier.status_code == 200
    stranger = app.test_client()
    unsigned = {"app_id": "mockpay-sandbox", "method": "mockpay.trade.close", "out_trade_no": order_sn}
    forged = {**unsigned, "sign_type": "RSA2", "timestamp": datetime.now().strftime("%Y-%m-%d %H:%M:%S")}
    forged["sign"] = rsa2.sign(forged, other_key_pair[0], rsa2.REQUEST_UNSIGNED_FIELDS)

    answers = [stranger.post("/mockpay/api", data=form).json for form in (unsigned, forged)]

    assert [(a["code"], a["sub_code"]) for a in answers] == [
        ("40001", "isv.missing-signature"),
        ("40002", "isv.invalid-signature"),
    ]
    assert sandbox(app).ledger.trade(order_sn).trade_status == "WAIT_BUYER_PAY"


@pytest.mark.parametrize("method", ["mockpay.trade.query", "mockpay.trade.refund", "mockpay.trade.create"])
def test_every_sandbox_api_method_wants_the_shops_signature(app, receiver, method, client):
    answer = client.post(
        "/mockpay/api",
        data={
            "app_id": "mockpay-sandbox",
            "method": method,
            "out_trade_no": "ATTACKER-0003",
            "total_amount": "0.01",
            "subject": "x",
            "notify_url": receiver.url,
            "return_url": EVIL,
            "refund_amount": "0.01",
            "out_request_no": "R1",
        },
    ).json
    assert (answer["code"], answer["sub_code"]) == ("40001", "isv.missing-signature")
    assert sandbox(app).ledger.trade("ATTACKER-0003") is None
    assert client.get("/mockpay/cashier?out_trade_no=ATTACKER-0003").status_code == 404


def test_the_readme_shop_pays_with_mockpay_without_public_url(tmp_path):
    """The README's first command sets no PUBLIC_URL: checkout still opens the trade (in process,
    at the sandbox mounted in the shop), and the notify reaches the shop at the request's host."""
    app = make_app(tmp_path)
    try:
        with serving(app) as base_url:
            assert app.config["PUBLIC_URL"] == ""
            before = open_order(app)
            browser = browser_login(base_url)
            pay_on_cashier(browser, base_url, before["order_sn"])
            view = wait_until_fulfilled(browser, base_url, before["order_sn"])
        assert view["status"] == "awaiting_shipment" and view["points_awarded"]
        assert [a.url for a in sandbox(app).notifier.attempts] == [f"{base_url}/notify/mockpay"]
    finally:
        app.extensions["gmall"].bus.close()
        sandbox(app).notifier.join(10)
