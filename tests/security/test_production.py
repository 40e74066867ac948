"""Production mode (issue "Safe to deploy", finding 1): one setting, PRODUCTION, and a shop
that refuses to start with anything that pays with no money or that is unsafe on several
hosts; ``gmall-payment check`` says the same before a deploy."""

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from support.forms import logged_in
from support.production import (
    OPERATOR_TOKEN,
    make_production_app,
    production_config,
    production_settings,
)
from support.shop import csrf_token, hidden_fields, make_app, open_order, shop_state

from gmall_payment.adapters.sql.models import Order, db
from gmall_payment.plugins.alipay.provider import AlipayProvider
from gmall_payment.plugins.mockpay.provider import MockpayProvider
from gmall_payment.webapp import create_app
from gmall_payment.webapp.cli import main
from gmall_payment.webapp.production import Finding, check

SANDBOX_URLS = ["/mockpay/cashier", "/mockpay/api", "/alipay-sandbox/gateway.do"]
#: The same in a venv where another provider is installed (gmall-payment-wechatpay, with no keys).
pytestmark = pytest.mark.usefixtures("builtin_providers_only")


def order_status(app, order_sn):
    with app.app_context():
        return db.session.scalar(select(Order.status).where(Order.order_sn == order_sn))


def refused(config) -> str:
    with pytest.raises(ValueError, match="PRODUCTION refuses to start") as error:
        create_app(config)
    return str(error.value)


# finding 1: mockpay and the sandboxes stayed on in production


def test_a_production_shop_offers_no_sandbox_and_mockpay_cannot_pay(tmp_path):
    app = make_production_app(tmp_path)
    client = logged_in(app)
    order = open_order(app)

    pay_page = client.get(f"/pay.html?orderToken={order['order_sn']}")
    assert pay_page.status_code == 200 and "支付宝" in pay_page.text
    assert "模拟支付" not in pay_page.text and "mockpay" not in pay_page.text
    started = client.post(
        "/pay/mockpay", data={"orderToken": order["order_sn"], "csrf_token": csrf_token(pay_page.text)}
    )
    assert started.status_code == 404
    fields = {
        "app_id": "mockpay-sandbox",
        "out_trade_no": order["order_sn"],
        "total_amount": order["amount"],
        "subject": "x",
        "notify_url": "https://pay.example.com/notify/mockpay",
        "return_url": "https://pay.example.com/pay/return/mockpay",
    }
    for url in SANDBOX_URLS:
        assert client.get(url).status_code == 404, url
        assert client.post(url, data={**fields, "action": "pay", "scenario": "normal"}).status_code == 404, (
            url
        )

    assert order_status(app, order["order_sn"]) == 0
    assert shop_state(app, order) == (order["member"], order["sku"])  # no stock deducted, no points
    assert app.extensions["gmall"].providers.names() == ["alipay"]


def test_the_embedded_default_still_offers_mockpay_and_serves_the_sandboxes(tmp_path):
    app = make_app(tmp_path)
    client = logged_in(app)
    order = open_order(app)
    pay_page = client.get(f"/pay.html?orderToken={order['order_sn']}")
    assert "模拟支付" in pay_page.text and "支付宝" in pay_page.text
    cashier = client.post(
        "/pay/mockpay",
        data={"orderToken": order["order_sn"], "csrf_token": csrf_token(pay_page.text)},
        follow_redirects=True,
    )
    assert cashier.status_code == 200 and cashier.request.path == "/mockpay/cashier"
    assert hidden_fields(cashier.text)["out_trade_no"] == order["order_sn"]
    assert client.get("/alipay-sandbox/gateway.do").status_code != 404
    assert app.config["SANDBOXES"] is True and app.config["SESSION_COOKIE_SECURE"] is False
    assert "staging-banner" not in pay_page.text


def test_providers_say_they_are_sandboxes():
    assert MockpayProvider.sandbox is True and AlipayProvider.sandbox is False


@pytest.mark.parametrize(
    ("setting", "overrides"),
    [
        ("SANDBOXES", {"SANDBOXES": True}),
        ("PROVIDERS", {"PROVIDERS": "alipay,mockpay"}),
        ("ALIPAY_GATEWAY_URL", {"ALIPAY_GATEWAY_URL": "offline"}),
        ("ALIPAY_GATEWAY_URL", {"ALIPAY_GATEWAY_URL": "sandbox"}),
        ("ALIPAY_APP_PRIVATE_KEY", {"ALIPAY_APP_PRIVATE_KEY_FILE": None, "ALIPAY_PUBLIC_KEY_FILE": None}),
    ],
)
def test_a_sandbox_turned_on_in_production_stops_the_start_naming_the_setting(tmp_path, setting, overrides):
    message = refused(production_config(tmp_path, **overrides))
    assert f"FATAL {setting}:" in message and "STAGING_ALLOW_SANDBOXES" in message


def test_staging_may_turn_the_sandboxes_on_and_every_page_says_so(tmp_path):
    app = make_production_app(
        tmp_path, STAGING_ALLOW_SANDBOXES=True, SANDBOXES=True, PROVIDERS="mockpay,alipay"
    )
    client = logged_in(app)
    order = open_order(app)
    pages = [
        client.get("/login"),
        client.get("/orders"),
        client.get(f"/pay.html?orderToken={order['order_sn']}"),
        client.get("/operator/login"),
    ]  # (/seckill would ask Redis, which this shop has not)
    for page in pages:
        assert 'id="staging-banner"' in page.text and "mockpay" in page.text, page.request.path
    assert "模拟支付" in pages[2].text and client.post("/mockpay/api").status_code != 404


def test_secrets_and_urls_a_production_start_refuses_all_listed_at_once(tmp_path):
    message = refused(
        production_config(
            tmp_path,
            SECRET_KEY=None,
            OPERATOR_TOKEN="only-twenty-characters",
            PUBLIC_URL="http://pay.example.com",
            ALIPAY_SELLER_ID=None,
        )
    )
    for setting in ("SECRET_KEY", "OPERATOR_TOKEN", "PUBLIC_URL", "ALIPAY_SELLER_ID"):
        assert f"FATAL {setting}:" in message
    assert not (tmp_path / "instance" / "secret_key").exists()  # nothing generated for a production shop


def test_a_production_shop_never_generates_secrets_into_the_instance_folder(tmp_path):
    app = make_production_app(tmp_path, OPERATOR_TOKEN=None)
    assert app.config["SECRET_KEY"] == production_settings(tmp_path)["SECRET_KEY"]
    assert app.config["OPERATOR_TOKEN"] is None
    assert not (tmp_path / "instance" / "secret_key").exists()
    assert not (tmp_path / "instance" / "operator_token").exists()


# the one function


def test_the_checks_are_one_function_over_the_settings(tmp_path):
    alipay, mockpay = AlipayProvider.__new__(AlipayProvider), MockpayProvider.__new__(MockpayProvider)
    config = {**production_settings(tmp_path), "SANDBOXES": False, "SESSION_COOKIE_SECURE": True}
    assert [f for f in check(config, [alipay]) if f.fatal] == []
    warnings = {
        f.setting for f in check({**config, "DATABASE_URL": "sqlite:///x.db", "REDIS_URL": ""}, [alipay])
    }
    assert warnings == {"DATABASE_URL", "REDIS_URL"}
    assert Finding(
        "PROVIDERS",
        "enables mockpay, a sandbox provider: its payments are no money; refused in "
        "PRODUCTION (STAGING_ALLOW_SANDBOXES=true only for staging)",
        True,
    ) in check(config, [alipay, mockpay])
    staged = check({**config, "STAGING_ALLOW_SANDBOXES": True}, [alipay, mockpay])
    assert [(f.setting, f.fatal) for f in staged] == [("PROVIDERS", False)]
    assert {f.setting for f in check({**config, "SESSION_COOKIE_SECURE": False}, [alipay]) if f.fatal} == {
        "SESSION_COOKIE_SECURE"
    }
    assert [f.setting for f in check({}, [])] == ["PRODUCTION"]


# gmall-payment check


def environment(settings: dict) -> dict:
    return {
        f"GMALL_{key}": str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in settings.items()
    }


def test_check_lists_every_finding_and_fails_where_the_shop_would_refuse(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = production_config(tmp_path, SANDBOXES=True, OPERATOR_TOKEN="short-token-1234567")
    runner = CliRunner()
    result = runner.invoke(main, ["check"], env=environment(settings))
    assert result.exit_code == 1, result.output
    assert "FATAL SANDBOXES:" in result.output and "FATAL OPERATOR_TOKEN:" in result.output
    assert "DATABASE_URL" in result.output  # the warning too
    with pytest.raises(ValueError, match="PRODUCTION refuses"):
        create_app(settings)

    good = runner.invoke(main, ["check"], env=environment(production_config(tmp_path)))
    assert good.exit_code == 0, good.output
    assert "warning DATABASE_URL" in good.output and "ready for production" in good.output
    assert OPERATOR_TOKEN not in good.output  # findings never print a secret


def test_check_names_a_key_the_shop_cannot_read_beside_the_other_findings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = production_config(
        tmp_path, ALIPAY_APP_PRIVATE_KEY_FILE=str(tmp_path / "missing.pem"), PUBLIC_URL=None
    )
    result = CliRunner().invoke(main, ["check"], env=environment(settings))
    assert result.exit_code == 1
    assert "FATAL settings: ALIPAY_APP_PRIVATE_KEY_FILE: cannot read" in result.output
    assert "FATAL PUBLIC_URL: not set" in result.output


def test_check_says_the_embedded_demo_is_not_production(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check"], env={"GMALL_INSTANCE_PATH": str(tmp_path / "instance")})
    assert result.exit_code == 1 and "FATAL PRODUCTION: off" in result.output
