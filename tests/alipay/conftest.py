"""Fixtures for Alipay: throw-away key pairs, settings in the configured mode, the gateway served for real."""

import pytest
from support.alipay import APP_ID, SELLER_ID, SPEEDUP
from support.servers import Receiver, serving
from support.shop import make_app

from gmall_payment.plugins import signing
from gmall_payment.plugins.alipay.config import AlipayConfig
from gmall_payment.plugins.alipay.gateway import make_gateway_app
from gmall_payment.plugins.alipay.provider import AlipayProvider


@pytest.fixture(scope="session")
def merchant_keys():
    return signing.generate_key_pair()


@pytest.fixture(scope="session")
def gateway_keys():
    return signing.generate_key_pair()


@pytest.fixture(scope="session")
def other_keys():
    return signing.generate_key_pair()


def write_key(path, key, private=False):
    path.write_bytes(signing.private_pem(key) if private else signing.public_pem(key))
    return str(path)


@pytest.fixture
def settings(tmp_path, merchant_keys, gateway_keys):
    """Both sides configured with files: the shop's ALIPAY_* and the gateway's ALIPAY_SANDBOX_*."""
    return {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "ALIPAY_APP_ID": APP_ID,
        "ALIPAY_SELLER_ID": SELLER_ID,
        "ALIPAY_APP_PRIVATE_KEY_FILE": write_key(tmp_path / "app_private.pem", merchant_keys[0], private=True),
        "ALIPAY_PUBLIC_KEY_FILE": write_key(tmp_path / "alipay_public.pem", gateway_keys[1]),
        "ALIPAY_SANDBOX_PRIVATE_KEY_FILE": write_key(tmp_path / "gateway_private.pem", gateway_keys[0], private=True),
        "ALIPAY_SANDBOX_MERCHANT_PUBLIC_KEY_FILE": write_key(tmp_path / "app_public.pem", merchant_keys[1]),
        "ALIPAY_SANDBOX_NOTIFY_SPEEDUP": SPEEDUP,
    }


@pytest.fixture
def gateway(settings):
    """The offline gateway served on loopback; ``gateway.url`` is its gateway.do."""
    app = make_gateway_app(settings)
    with serving(app) as base_url:
        app.url = f"{base_url}/gateway.do"
        yield app
    app.notifier.join(10)


@pytest.fixture
def provider(settings, gateway):
    """The provider, configured against the served gateway, with the real SDK underneath."""
    return AlipayProvider(AlipayConfig.from_settings({**settings, "ALIPAY_GATEWAY_URL": gateway.url}))


@pytest.fixture
def receiver():
    shop = Receiver()
    with serving(shop) as base_url:
        shop.url = f"{base_url}/notify/alipay"
        yield shop


@pytest.fixture
def app(tmp_path):
    """The shop on its embedded defaults: Alipay points at the offline gateway it mounts."""
    return make_app(tmp_path)
