"""Operators: the token, the JSON refund endpoint, the operator pages and the payments commands."""

import re

import pytest
from sqlalchemy import select, update
from support.forms import log_in
from support.shop import (
    browser_login,
    csrf_token,
    make_app,
    open_order,
    pay_on_cashier,
    served_shop,
    shop_state,
    wait_until_fulfilled,
)

from gmall_payment.adapters.sql.models import Order, PaymentInfo, db
from gmall_payment.webapp import create_app

TOKEN = "operator-token-for-tests-0123456789"


def bearer(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


# the token


def test_the_embedded_default_makes_a_token_once_and_prints_it(tmp_path):
    first = make_app(tmp_path)
    token = first.config["OPERATOR_TOKEN"]
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    assert (tmp_path / "instance" / "operator_token").read_text() == token
    assert make_app(tmp_path).config["OPERATOR_TOKEN"] == token  # kept, like the session key
    printed = first.test_cli_runner().invoke(args=["operator-token"])
    assert (printed.exit_code, printed.output.strip()) == (0, token)


@pytest.mark.settings(REDIS_URL="redis://127.0.0.1:1/0")
def test_production_has_no_default_token(tmp_path, app, client, runner):
    assert app.config["OPERATOR_TOKEN"] is None and not (tmp_path / "instance" / "operator_token").exists()
    answer = client.get("/api/operator/payments", headers=bearer())
    assert answer.status_code == 503 and "set OPERATOR_TOKEN" in answer.json["message"]
    assert client.get("/operator/payments").status_code == 503
    printed = runner.invoke(args=["operator-token"])
    assert printed.exit_code != 0 and "operator access is off" in printed.output


@pytest.mark.parametrize("token", ["short", " padded-token-with-spaces-123 "])
def test_a_weak_token_stops_the_shop_at_start(tmp_path, token):
    with pytest.raises(ValueError, match="OPERATOR_TOKEN must be at least 16 characters"):
        create_app(
            {
                "INSTANCE_PATH": str(tmp_path),
                "SECRET_KEY": "x",
                "OPERATOR_TOKEN": token,
                "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            }
        )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("wrong-token-0123456789abcdef"),
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
    ],
)
@pytest.mark.settings(OPERATOR_TOKEN=TOKEN)
def test_the_api_wants_the_bearer_token(headers, client):
    answer = client.get("/api/operator/payments", headers=headers)
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post("/api/operator/payments/1/refunds", json={}, headers=headers).status_code == 401
    assert client.get("/api/operator/payments", headers=bearer()).status_code == 200


# refunding over the JSON API, a payment made over real HTTP


@pytest.fixture
def paid(tmp_path):
    """A shop on a real server, an order paid with mockpay and fulfilled."""
    with served_shop(tmp_path, OPERATOR_TOKEN=TOKEN) as (app, base_url):
        before = open_order(app)
        browser = browser_login(base_url)
        pay_on_cashier(browser, base_url, before["order_sn"])
        wait_until_fulfilled(browser, base_url, before["order_sn"])
        with app.app_context():
            payment_id = db.session.scalar(
                select(PaymentInfo.id).where(PaymentInfo.order_sn == before["order_sn"])
            )
        yield app, browser, base_url, before, payment_id


def test_refunds_through_the_json_api(paid):
    app, browser, base_url, before, payment_id = paid
    api = app.test_client()
    url = f"/api/operator/payments/{payment_id}/refunds"
    amount = before["amount"]
    sandbox = _mockpay_sandbox(app)
    awarded = shop_state(app, before)[0]
    assert awarded == (before["member"][0] + before["integration"], before["member"][1] + before["growth"])

    first = api.post(url, json={"amount": "1.00", "out_request_no": "R1"}, headers=bearer())
    again = api.post(url, json={"amount": "1.00", "out_request_no": "R1"}, headers=bearer())
    too_much = api.post(url, json={"amount": amount, "out_request_no": "R2"}, headers=bearer())
    as_float = api.post(url, json={"amount": 1.5, "out_request_no": "R3"}, headers=bearer())
    reused = api.post(url, json={"amount": "2.00", "out_request_no": "R1"}, headers=bearer())

    assert first.status_code == 200, first.json
    assert (first.json["refund"]["status"], first.json["payment"]["status"]) == (
        "succeeded",
        "partially_refunded",
    )
    assert again.status_code == 200 and again.json["refund"] == first.json["refund"]
    assert sandbox.ledger.trade(before["order_sn"]).refunded == 1  # one refund at the provider
    assert too_much.status_code == 409 and too_much.json["error"] == "exceeds_payment"
    rest = f"{float(amount) - 1:.2f}"
    assert too_much.json["message"] == (
        f"refund of {amount} refused: 1.00 of the {amount} paid is refunded or "
        f"being refunded already, so at most {rest} can be refunded"
    )
    assert (as_float.status_code, as_float.json["error"]) == (400, "invalid_amount")
    assert (reused.status_code, reused.json["error"]) == (409, "request_no_reused")
    assert shop_state(app, before)[0] == awarded  # partly refunded: the points stay

    full = api.post(url, json={"amount": rest, "out_request_no": "R2"}, headers=bearer())

    assert full.status_code == 200 and full.json["payment"]["status"] == "refunded"
    assert full.json["payment"]["refunded"] == amount
    app.extensions["gmall"].bus.join()
    assert shop_state(app, before)[0] == before["member"]  # the points went back, once
    view = browser.get(f"{base_url}/api/orders/{before['order_sn']}").json()
    assert [(s["step"], s["state"]) for s in view["fulfilment"]][-1] == ("revoke_points", "done")
    assert (
        api.post(
            "/api/operator/payments/999/refunds",
            json={"amount": "1.00", "out_request_no": "R9"},
            headers=bearer(),
        ).status_code
        == 404
    )


def _mockpay_sandbox(app):
    """The sandbox mounted in the shop (through the WSGI dispatcher)."""
    return app.wsgi_app.mounts["/mockpay"]


# the pages


def test_the_operator_pages_need_the_token_then_show_payments(paid):
    app, browser, base_url, before, payment_id = paid
    api = app.test_client()
    api.post(
        f"/api/operator/payments/{payment_id}/refunds",
        json={"amount": "1.00", "out_request_no": "R1"},
        headers=bearer(),
    )
    with app.app_context():
        db.session.execute(update(PaymentInfo).where(PaymentInfo.id == payment_id).values(flag="look at me"))
        db.session.commit()
    page = app.test_client()

    assert page.get("/operator/payments").headers["Location"].startswith("/operator/login")
    form = page.get("/operator/login")
    assert form.status_code == 200
    assert page.post("/operator/login", data={"token": TOKEN}).status_code == 400  # no CSRF token
    wrong = page.post("/operator/login", data={"token": "nope", "csrf_token": csrf_token(form.text)})
    assert wrong.status_code == 401 and "wrong token" in wrong.text
    assert page.get("/operator/payments").status_code == 302
    right = page.post("/operator/login", data={"token": TOKEN, "csrf_token": csrf_token(form.text)})
    assert right.status_code == 302 and right.headers["Location"] == "/operator/payments"

    listing = page.get("/operator/payments").text
    row = re.search(rf'<tr id="payment-{payment_id}" class="flagged">(.*?)</tr>', listing, re.S).group(1)
    assert before["order_sn"] in row and "partially_refunded" in row and "look at me" in row
    assert "notify: paid" in row and "R1 ¥1.00 succeeded" in row  # what was heard, the refunds
    assert f'id="payment-{payment_id}"' in page.get("/operator/payments?attention=flagged").text
    assert f'id="payment-{payment_id}"' not in page.get("/operator/payments?status=unpaid").text
    assert page.get("/operator/payments?status=bogus").status_code == 400
    detail = page.get(f"/operator/payments/{payment_id}").text
    notifications = re.search(r'<table id="notifications"[^>]*>(.*?)</table>', detail, re.S).group(1)
    refunds = re.search(r'<table id="refunds"[^>]*>(.*?)</table>', detail, re.S).group(1)
    assert ">notify<" in notifications and ">paid<" in notifications
    assert ">R1<" in refunds and "succeeded" in refunds and "¥1.00" in refunds
    assert 'id="flag"' in detail and "clear-flag" in detail
    assert '<dd id="payment-type-code">—</dd>' in detail  # mockpay: no code of the seed's payment_type
    assert page.get("/operator/payments/999").status_code == 404

    page.post("/operator/logout", data={"csrf_token": csrf_token(detail)})
    assert page.get("/operator/payments").status_code == 302
    member = app.test_client()  # a shopper's session is no operator's
    log_in(member)
    assert member.get("/operator/payments").status_code == 302


def test_payments_commands(paid):
    app, browser, base_url, before, payment_id = paid
    runner = app.test_cli_runner()
    sn = before["order_sn"]

    listed = runner.invoke(args=["payments", "list"])
    assert (
        f"#{payment_id} {sn} (order: awaiting shipment (待发货)) mockpay: paid (已支付) ¥{before['amount']}"
        in listed.output
    )

    refunded = runner.invoke(args=["payments", "refund", str(payment_id), "0.50", "--key", "CLI-1"])
    assert refunded.exit_code == 0, refunded.output
    assert f"refund CLI-1 of payment #{payment_id}: ¥0.50 succeeded" in refunded.output
    assert "partially refunded (部分退款)" in refunded.output and "refunded ¥0.50" in refunded.output
    refused = runner.invoke(args=["payments", "refund", str(payment_id), before["amount"], "--key", "CLI-2"])
    assert refused.exit_code == 1 and "at most" in refused.output
    assert (
        runner.invoke(args=["payments", "refund", str(payment_id), "1"]).exit_code == 2
    )  # --key is required

    shown = runner.invoke(args=["payments", "show", str(payment_id)])
    assert shown.exit_code == 0
    assert "notify signed success paid" in shown.output and "CLI-1 ¥0.50 operator succeeded" in shown.output
    assert "  payment_type - (the seed's code of mockpay)\n" in shown.output
    assert runner.invoke(args=["payments", "list", "--status", "unpaid"]).output.count(sn) == 0
    assert runner.invoke(args=["payments", "show", "999"]).exit_code == 1

    with app.app_context():
        db.session.execute(update(PaymentInfo).where(PaymentInfo.id == payment_id).values(flag="look"))
        db.session.commit()
    assert "FLAG: look" in runner.invoke(args=["payments", "list", "--attention", "flagged"]).output
    cleared = runner.invoke(args=["payments", "clear-flag", str(payment_id)])
    assert cleared.exit_code == 0 and "FLAG" not in cleared.output
    assert sn not in runner.invoke(args=["payments", "list", "--attention", "flagged"]).output
    with app.app_context():
        assert db.session.scalar(select(Order.status).where(Order.order_sn == sn)) == 1
