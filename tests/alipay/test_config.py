"""Alipay's settings: key formats, failures that name the setting, rotation, Beijing time, the offline default."""

import time
from datetime import datetime, timedelta

import pytest
from alipay import AliPay
from support.alipay import APP_ID

from gmall_payment.core.errors import NotificationRejected
from gmall_payment.plugins import rsa2
from gmall_payment.plugins.alipay import gmall_payment_sandbox_apps
from gmall_payment.plugins.alipay.client import AlipayClient
from gmall_payment.plugins.alipay.config import (
    OFFLINE_GATEWAY,
    PRODUCTION_GATEWAY,
    SANDBOX_GATEWAY,
    AlipayConfig,
)
from gmall_payment.plugins.alipay.gateway import make_gateway_app
from gmall_payment.plugins.alipay.provider import AlipayProvider


@pytest.fixture
def inline(tmp_path, merchant_keys, gateway_keys):
    """The shop configured inline, keys as the one-line base64 Alipay's console shows."""
    private_b64 = "".join(rsa2.private_pem(merchant_keys[0]).decode().splitlines()[1:-1])
    return {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "ALIPAY_APP_ID": APP_ID,
        "ALIPAY_APP_PRIVATE_KEY": private_b64,
        "ALIPAY_PUBLIC_KEY": rsa2.public_key_base64(gateway_keys[1]),
    }


def test_one_line_base64_keys_are_read(inline, merchant_keys, gateway_keys):
    config = AlipayConfig.from_settings(inline)
    assert config.private_key.private_numbers() == merchant_keys[0].private_numbers()
    assert [k.public_numbers() for k in config.alipay_public_keys] == [gateway_keys[1].public_numbers()]
    assert (config.gateway_url, config.offline, config.seller_id) == (PRODUCTION_GATEWAY, False, None)
    assert not config.serves_offline_gateway
    assert gmall_payment_sandbox_apps(settings=inline, providers=[]) == {}


def test_pem_inline_with_escaped_newlines_and_from_files(inline, tmp_path, merchant_keys, gateway_keys):
    escaped = rsa2.private_pem(merchant_keys[0]).decode().replace("\n", "\\n")
    assert (
        AlipayConfig.from_settings({**inline, "ALIPAY_APP_PRIVATE_KEY": escaped}).private_key.key_size == 2048
    )
    path = tmp_path / "alipay.pem"
    path.write_bytes(rsa2.public_pem(gateway_keys[1]))
    config = AlipayConfig.from_settings(
        {**inline, "ALIPAY_PUBLIC_KEY": None, "ALIPAY_PUBLIC_KEY_FILE": str(path)}
    )
    assert config.alipay_public_keys[0].public_numbers() == gateway_keys[1].public_numbers()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"ALIPAY_APP_PRIVATE_KEY": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"},
            "ALIPAY_APP_PRIVATE_KEY: not a usable RSA private key",
        ),
        ({"ALIPAY_APP_PRIVATE_KEY": "not base64 at all!"}, "ALIPAY_APP_PRIVATE_KEY: not an RSA private key"),
        (
            {"ALIPAY_PUBLIC_KEY": "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAkWs"},
            "ALIPAY_PUBLIC_KEY: not an RSA public key",
        ),
        (
            {"ALIPAY_PUBLIC_KEY": "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAkWsA"},
            "ALIPAY_PUBLIC_KEY: not a usable RSA public key",
        ),
        (
            {"ALIPAY_PUBLIC_KEY_FILE": "/nowhere/alipay.pem"},
            "set ALIPAY_PUBLIC_KEY or ALIPAY_PUBLIC_KEY_FILE, not both",
        ),
        (
            {"ALIPAY_PUBLIC_KEY": None, "ALIPAY_PUBLIC_KEY_FILE": "/nowhere/alipay.pem"},
            "ALIPAY_PUBLIC_KEY_FILE: cannot read /nowhere/alipay.pem",
        ),
        ({"ALIPAY_PUBLIC_KEY": None}, "ALIPAY_PUBLIC_KEY (or _FILE) is needed"),
        ({"ALIPAY_APP_PRIVATE_KEY": None}, "ALIPAY_APP_PRIVATE_KEY (or _FILE) is needed"),
        ({"ALIPAY_APP_ID": ""}, "ALIPAY_APP_ID is needed"),
        ({"ALIPAY_SECOND_PUBLIC_KEY": "xx"}, "ALIPAY_SECOND_PUBLIC_KEY: not an RSA public key"),
        ({"ALIPAY_GATEWAY_URL": "ftp://alipay"}, "ALIPAY_GATEWAY_URL: 'ftp://alipay' is neither"),
        ({"ALIPAY_CHECKOUT": "popup"}, "ALIPAY_CHECKOUT: 'popup' is not one of form, redirect"),
        (
            {"ALIPAY_NOTIFY_BASE_URL": "tunnel.example"},
            "ALIPAY_NOTIFY_BASE_URL: 'tunnel.example' is not an absolute",
        ),
        ({"ALIPAY_TIMEOUT": "soon"}, "ALIPAY_TIMEOUT: 'soon' is not a number of seconds"),
    ],
)
def test_unusable_settings_fail_at_start_naming_the_setting(inline, changes, message):
    with pytest.raises(ValueError) as error:
        AlipayProvider.from_settings({**inline, **changes})
    assert message in str(error.value)


def test_the_apps_own_public_key_in_place_of_alipays_is_refused(inline, merchant_keys):
    with pytest.raises(ValueError, match="ALIPAY_PUBLIC_KEY is the application's own public key"):
        AlipayConfig.from_settings({**inline, "ALIPAY_PUBLIC_KEY": rsa2.public_key_base64(merchant_keys[1])})


def test_a_malformed_key_stops_the_shop_from_starting(tmp_path, inline):
    from support.shop import make_app

    with pytest.raises(ValueError, match="ALIPAY_APP_PRIVATE_KEY: not"):
        make_app(tmp_path, **{**inline, "ALIPAY_APP_PRIVATE_KEY": "bm90IGEga2V5"})


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("production", PRODUCTION_GATEWAY),
        ("sandbox", SANDBOX_GATEWAY),
        ("offline", OFFLINE_GATEWAY),
        ("http://127.0.0.1:5001/gateway.do", "http://127.0.0.1:5001/gateway.do"),
    ],
)
def test_gateway_url_from_settings(inline, value, url):
    assert AlipayConfig.from_settings({**inline, "ALIPAY_GATEWAY_URL": value}).gateway_url == url


def notify(key, **changes):
    params = {
        "app_id": APP_ID,
        "notify_id": "n1",
        "out_trade_no": "A",
        "trade_no": "T",
        "total_amount": "1.00",
        "trade_status": "TRADE_SUCCESS",
        "seller_id": "2088000000000777",
        **changes,
    }
    return {**params, "sign_type": "RSA2", "sign": rsa2.sign(params, key)}


def test_a_second_alipay_public_key_lets_keys_rotate(inline, gateway_keys, other_keys):
    provider = AlipayProvider.from_settings(
        {**inline, "ALIPAY_SECOND_PUBLIC_KEY": rsa2.public_key_base64(other_keys[1])}
    )
    assert provider.parse_notification(notify(gateway_keys[0])).out_trade_no == "A"
    assert provider.parse_notification(notify(other_keys[0])).out_trade_no == "A"
    only_one = AlipayProvider.from_settings(inline)
    with pytest.raises(NotificationRejected, match="bad_signature"):
        only_one.parse_notification(notify(other_keys[0]))


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Shanghai", "Pacific/Kiritimati"])
def test_timestamps_are_beijing_time_whatever_the_servers_zone(
    monkeypatch, merchant_keys, gateway_keys, zone
):
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        ours = AlipayClient(APP_ID, merchant_keys[0], [gateway_keys[1]], gateway=lambda: "unused")
        stamped = datetime.strptime(
            ours.build_body("alipay.trade.query", {})["timestamp"], "%Y-%m-%d %H:%M:%S"
        )
        sdk = AliPay(
            appid=APP_ID,
            app_private_key_string=rsa2.private_pem(merchant_keys[0]).decode(),
            alipay_public_key_string=rsa2.public_pem(gateway_keys[1]).decode(),
        )
        sdks = datetime.strptime(sdk.build_body("alipay.trade.query", {})["timestamp"], "%Y-%m-%d %H:%M:%S")
        local_offset = datetime.now().astimezone().utcoffset()
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    beijing = datetime(1970, 1, 1) + timedelta(seconds=time.time(), hours=8)
    assert abs((beijing - stamped).total_seconds()) < 5
    # The SDK as shipped stamps local time: off by the difference between the zones.
    assert abs((beijing - sdks).total_seconds() - (timedelta(hours=8) - local_offset).total_seconds()) < 5


def test_offline_default_generates_keys_and_wires_the_gateways_public_key(tmp_path):
    settings = {"INSTANCE_PATH": str(tmp_path / "instance")}
    provider = AlipayProvider.from_settings(settings)
    [mounted] = gmall_payment_sandbox_apps(settings=settings, providers=[]).values()

    assert provider.config.offline and provider.config.serves_offline_gateway
    assert provider.config.gateway_url == OFFLINE_GATEWAY
    keys = sorted(p.name for p in (tmp_path / "instance" / "alipay").iterdir())
    assert keys == [
        "gateway_private.pem",
        "gateway_public.pem",
        "merchant_private.pem",
        "merchant_public.pem",
    ]
    # What the gateway signs, the provider verifies; what the provider signs, the gateway verifies.
    params = {
        "app_id": provider.config.app_id,
        "notify_id": "n",
        "out_trade_no": "A",
        "trade_no": "T",
        "total_amount": "1.00",
        "trade_status": "TRADE_SUCCESS",
        "seller_id": mounted.config.seller_id,
    }
    signed = {**params, "sign": rsa2.sign(params, mounted.config.private_key)}
    assert provider.parse_notification(signed).total_amount == 1
    assert (
        mounted.config.merchant_public_key.public_numbers()
        == provider.config.private_key.public_key().public_numbers()
    )
    # A second start reads the same keys.
    again = make_gateway_app(settings)
    assert again.config.private_key.private_numbers() == mounted.config.private_key.private_numbers()


def test_the_shops_own_gateway_needs_public_url_for_server_calls(tmp_path):
    settings = {"INSTANCE_PATH": str(tmp_path / "instance")}
    config = AlipayConfig.from_settings(settings)
    with pytest.raises(ValueError, match="set PUBLIC_URL"):
        config.server_gateway_url()
    settings["PUBLIC_URL"] = "http://127.0.0.1:5000/"  # read when calling: the settings stay live
    assert config.server_gateway_url() == "http://127.0.0.1:5000/alipay-sandbox/gateway.do"
