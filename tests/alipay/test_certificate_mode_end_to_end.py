"""Certificate mode (公钥证书) end to end, offline: the gateway generates a root CA, its own
certificate under it and the application's, and the shop is configured with those files as
Alipay's console would give them. Pay → notify → paid, a query, a refund; a response signed
under a certificate the shop does not know is refused; requests without the SNs are refused."""

from decimal import Decimal
from pathlib import Path

import pytest
from support.alipay import (
    ALIPAY_ROOT_BUNDLE,
    SPEEDUP,
    a_payment,
    issued_by_gateway_ca,
    pay_on_cashier,
    served_gateway,
    start_on_cashier,
)
from support.servers import serving
from support.shop import copy_test_keys, make_app, member_orders, notify_log, snapshot, wait_for

from gmall_payment.core.errors import ProviderError, TradeNotFound
from gmall_payment.core.model import TradeStatus
from gmall_payment.plugins.alipay.certificates import cert_sn, read_certificates
from gmall_payment.plugins.alipay.config import AlipayConfig
from gmall_payment.plugins.alipay.provider import AlipayProvider
from gmall_payment.plugins.alipay.sandbox_certificates import (
    ALIPAY_FILE,
    APP_FILE,
    ROOT_FILE,
)


@pytest.fixture
def gateway(settings):
    """The offline gateway in certificate mode on its own server; its files are in the instance folder."""
    copy_test_keys(Path(settings["INSTANCE_PATH"]))
    with served_gateway({**settings, "ALIPAY_SANDBOX_CERT_MODE": True}) as app:
        yield app


@pytest.fixture
def cert_settings(settings, gateway):
    """The shop's settings in certificate mode: the three files instead of ALIPAY_PUBLIC_KEY."""
    folder = Path(settings["INSTANCE_PATH"]) / "alipay"
    shop = {key: value for key, value in settings.items() if key != "ALIPAY_PUBLIC_KEY_FILE"}
    return {
        **shop,
        "ALIPAY_GATEWAY_URL": gateway.url,
        "ALIPAY_APP_CERT_FILE": str(folder / APP_FILE),
        "ALIPAY_PUBLIC_CERT_FILE": str(folder / ALIPAY_FILE),
        "ALIPAY_ROOT_CERT_FILE": str(folder / ROOT_FILE),
    }


def renewed_alipay_cert(tmp_path, settings, public_key) -> str:
    """Another Alipay certificate under the gateway's root (Alipay renewed its own): its file."""
    path = tmp_path / "renewed.crt"
    path.write_bytes(
        issued_by_gateway_ca(Path(settings["INSTANCE_PATH"]) / "alipay", "Renewed Alipay", public_key)
    )
    return str(path)


def fulfilled(browser, base_url, order_sn):
    view = browser.get(f"{base_url}/api/orders/{order_sn}").json()
    return view if view["points_awarded"] and view["status"] == "awaiting_shipment" else None


def test_a_certificate_mode_payment_is_paid_queried_and_refunded(tmp_path, cert_settings, gateway):
    app = make_app(tmp_path, **cert_settings, RECONCILE_GRACE_SECONDS=0)
    with serving(app) as base_url:
        app.config["PUBLIC_URL"] = base_url
        provider = app.extensions["gmall"].providers.get("alipay")
        assert provider.config.certificates.app_cert_sn == gateway.config.certificates.app_cert_sn
        order_sn = member_orders(app)[0]
        browser, cashier = start_on_cashier(app, base_url, order_sn)  # the gateway checked both SNs

        pay_on_cashier(cashier, session=browser, follow=True)
        view = wait_for(lambda: fulfilled(browser, base_url, order_sn))
        assert gateway.notifier.join(10)
        app.extensions["gmall"].bus.join()
        with app.app_context():
            [payment] = app.extensions["gmall"].payments.uow().payments.for_order(order_sn)
        queried = provider.query(payment)
        refund = provider.refund(payment, Decimal("0.01"), f"{order_sn}-R1")
        assert gateway.notifier.join(10)  # the refund's notification too
        app.extensions["gmall"].bus.close()

    trade = gateway.ledger.get(order_sn)
    assert (view["payments"][0]["status"], view["payments"][0]["trade_no"]) == ("paid", trade.trade_no)
    log = notify_log(app)
    # Both verified with Alipay's certificate; the refund, asked of the provider behind the shop's
    # refunds, is one the shop never asked for.
    assert [(e.outcome, e.verified) for e in log] == [("paid", True), ("unknown_refund", True)]
    assert snapshot(app)[2] == 2
    assert (queried.status, queried.trade_no) == (TradeStatus.PAID, trade.trade_no)
    assert (refund.fund_change, refund.refunded_total) == (True, Decimal("0.01"))
    assert trade.refunded == Decimal("0.01")


def test_a_response_under_an_unknown_certificate_is_refused_and_a_second_one_rotates(
    tmp_path, settings, cert_settings, gateway, other_keys
):
    gateway_sn = gateway.config.certificates.alipay_certificates[0].sn
    renewed = renewed_alipay_cert(tmp_path, settings, other_keys[1])
    unknown = AlipayProvider(
        AlipayConfig.from_settings({**cert_settings, "ALIPAY_PUBLIC_CERT_FILE": renewed})
    )
    with pytest.raises(ProviderError) as refused:
        unknown.query(a_payment("202412120001"))
    assert f"signed under Alipay certificate {gateway_sn}, not one of" in str(refused.value)
    assert not isinstance(refused.value, TradeNotFound)  # refused before its content was read

    rotating = AlipayProvider(
        AlipayConfig.from_settings(
            {
                **cert_settings,
                "ALIPAY_PUBLIC_CERT_FILE": renewed,
                "ALIPAY_SECOND_PUBLIC_CERT_FILE": cert_settings["ALIPAY_PUBLIC_CERT_FILE"],
            }
        )
    )
    with pytest.raises(TradeNotFound):  # a verified answer: Alipay knows no such trade
        rotating.query(a_payment("202412120001"))
    assert [c.sn for c in rotating.config.certificates.alipay_certificates][1] == gateway_sn
    assert cert_sn(read_certificates(Path(renewed).read_bytes(), "renewed")[0]) != gateway_sn


def test_the_gateway_refuses_requests_without_the_serial_numbers_or_with_another_root(
    tmp_path, settings, cert_settings, gateway
):
    public_key_mode = AlipayProvider(
        AlipayConfig.from_settings({**settings, "ALIPAY_GATEWAY_URL": gateway.url})
    )
    with pytest.raises(ProviderError) as missing:
        public_key_mode.query(a_payment())
    assert missing.value.sub_code == "isv.missing-app-cert-sn"

    roots = tmp_path / "more_roots.crt"  # the gateway's root and Alipay's real ones: another root SN
    roots.write_bytes(
        Path(cert_settings["ALIPAY_ROOT_CERT_FILE"]).read_bytes() + b"\n" + ALIPAY_ROOT_BUNDLE.read_bytes()
    )
    other_root = AlipayProvider(
        AlipayConfig.from_settings({**cert_settings, "ALIPAY_ROOT_CERT_FILE": str(roots)})
    )
    with pytest.raises(ProviderError) as wrong:
        other_root.query(a_payment())
    assert wrong.value.sub_code == "isv.invalid-alipay-root-cert-sn"


def test_the_embedded_demo_pays_in_certificate_mode(tmp_path):
    app = make_app(tmp_path, ALIPAY_SANDBOX_CERT_MODE=True, ALIPAY_SANDBOX_NOTIFY_SPEEDUP=SPEEDUP)
    with serving(app) as base_url:
        app.config["PUBLIC_URL"] = base_url
        provider = app.extensions["gmall"].providers.get("alipay")
        order_sn = member_orders(app)[0]
        browser, cashier = start_on_cashier(app, base_url, order_sn)
        pay_on_cashier(cashier, session=browser, follow=True)
        view = wait_for(lambda: fulfilled(browser, base_url, order_sn))
        app.extensions["gmall"].bus.close()
    assert provider.config.certificates is not None and provider.config.offline
    assert view["payments"][0]["status"] == "paid"
    assert [e.outcome for e in notify_log(app)] == ["paid"]


def test_the_gateway_served_alone_prints_the_certificate_settings_that_configure_a_shop(
    tmp_path, monkeypatch
):
    from gmall_payment.webapp import provider_cli

    served = []
    monkeypatch.setattr(provider_cli, "run_simple", lambda host, port, app, **_: served.append(app))
    app = make_app(tmp_path, ALIPAY_SANDBOX_CERT_MODE=True)
    printed = app.test_cli_runner().invoke(args=["alipay-sandbox", "--port", "5999"])

    assert printed.exit_code == 0, printed.output
    lines = dict(
        line.strip().removeprefix("GMALL_").split("=", 1)
        for line in printed.output.splitlines()
        if "GMALL_" in line
    )
    assert "ALIPAY_PUBLIC_KEY" not in lines and {"ALIPAY_APP_CERT_FILE", "ALIPAY_ROOT_CERT_FILE"} <= set(
        lines
    )
    config = AlipayConfig.from_settings(lines)
    [gateway] = served
    assert (config.offline, config.gateway_url) == (False, "http://127.0.0.1:5999/gateway.do")
    assert config.certificates.app_cert_sn == gateway.config.certificates.app_cert_sn
    assert config.certificates.alipay_root_cert_sn == gateway.config.certificates.alipay_root_cert_sn
