"""Security headers and the session cookie (issue "Safe to deploy", finding 8): the session
cookie is Secure in production, and every page — the shop's, the operators', the sandboxes'
cashiers mounted beneath Flask, the click's JSON — says how a browser may use it."""

import pytest
from support.alipay import form_action, form_fields
from support.forms import logged_in
from support.headers import (
    assert_inline_code_has_the_nonce,
    assert_protected,
    assert_styled_as_the_shop,
    policy,
)
from support.production import PUBLIC_URL, make_production_app
from support.seckill_web import BROWSER, JSON, SKU, preheated
from support.shop import csrf_token, make_app, open_order

from gmall_payment.plugins.alipay.config import PRODUCTION_GATEWAY


@pytest.fixture
def shop(tmp_path):
    app = make_app(tmp_path, SECKILL_TICK_SECONDS=0.05)
    yield app
    app.extensions["gmall"].bus.close()


def test_every_page_of_the_embedded_shop_and_its_sandboxes_carries_the_headers(shop):
    client = logged_in(shop)
    order = open_order(shop)["order_sn"]
    pay_page = client.get(f"/pay.html?orderToken={order}")
    token = csrf_token(pay_page.text)
    pages = {
        "login": shop.test_client().get("/login"),
        "orders": client.get("/orders"),
        "pay.html": pay_page,
        "seckill": client.get("/seckill", headers=BROWSER),
        "not found": client.get("/no-such-page"),
        "operator login": shop.test_client().get("/operator/login"),
        "mockpay cashier": client.post(
            "/pay/mockpay", data={"orderToken": order, "csrf_token": token}, follow_redirects=True
        ),
        "mockpay api": client.post("/mockpay/api"),
        "alipay form": client.post("/pay/alipay", data={"orderToken": order, "csrf_token": token}),
        "pay result": client.get(f"/pay/return/alipay?out_trade_no={order}"),
    }
    form = pages["alipay form"]
    pages["alipay cashier"] = client.post(form_action(form.text), data=form_fields(form.text))
    assert (
        pages["mockpay cashier"].request.path == "/mockpay/cashier"
        and pages["alipay cashier"].status_code == 200
    ), pages["alipay cashier"].text
    assert "gateway.do" in pages["alipay cashier"].request.path
    for where, page in pages.items():
        assert_protected(page, where)
    for where in ("login", "orders", "pay.html", "seckill", "alipay form", "pay result"):
        assert_inline_code_has_the_nonce(pages[where], where)
    for where in ("mockpay cashier", "alipay cashier"):  # no inline code at all: no nonce beneath Flask
        assert_styled_as_the_shop(pages[where], where)


def test_the_embedded_default_forces_no_https_and_no_secure_cookie(shop):
    page = shop.test_client().get("/login")
    assert page.status_code == 200 and "Strict-Transport-Security" not in page.headers
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_the_clicks_json_fast_path_says_nosniff(shop):
    client = logged_in(shop)
    preheated(client)
    answer = client.get(f"/seckill/{SKU}", headers=JSON)
    assert answer.status_code == 200 and answer.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.usefixtures("builtin_providers_only")  # also where another provider is installed, unconfigured
def test_a_production_shop_sends_its_session_cookie_over_https_only(tmp_path):
    app = make_production_app(tmp_path)
    client = app.test_client()
    page = client.get("/login", base_url=PUBLIC_URL)
    answer = client.post(
        "/login",
        base_url=PUBLIC_URL,
        headers={"Referer": f"{PUBLIC_URL}/login"},
        data={"username": "demo", "password": "demo123", "csrf_token": csrf_token(page.text)},
    )
    assert answer.status_code == 302
    cookie = answer.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")


@pytest.mark.usefixtures("builtin_providers_only")
def test_production_pages_may_post_forms_to_the_shop_and_alipay_only(tmp_path):
    app = make_production_app(tmp_path)
    for path in ("/login", "/operator/login", "/no-such-page"):
        page = app.test_client().get(path, base_url=PUBLIC_URL)
        assert_protected(page, path)
        origin = PRODUCTION_GATEWAY.rsplit("/", 1)[0]
        assert policy(page)["form-action"] == ["'self'", PUBLIC_URL, origin], path


@pytest.mark.settings(ALIPAY_RETURN_BASE_URL="https://tunnel.example.net/shop")
def test_forms_may_go_where_alipay_sends_the_shopper_back(client):
    """ALIPAY_RETURN_BASE_URL (a tunnel): the offline gateway's cashier form redirects there."""
    assert policy(client.get("/login"))["form-action"] == ["'self'", "https://tunnel.example.net"]
