"""Fixtures for Alipay: throw-away key pairs, settings in the configured mode, the gateway served for real."""

import pytest
from support.alipay import APP_ID, SELLER_ID, SPEEDUP, served_gateway, shop_and_gateway
from support.production import builtin_providers_only  # noqa: F401 (a fixture)
from support.servers import receiving

from gmall_payment.plugins import rsa2
from gmall_payment.plugins.alipay.config import AlipayConfig
from gmall_payment.plugins.alipay.provider import AlipayProvider


@pytest.fixture(scope="session")
def merchant_keys():
    return rsa2.generate_key_pair()


@pytest.fixture(scope="session")
def gateway_keys():
    return rsa2.generate_key_pair()


@pytest.fixture(scope="session")
def other_keys():
    return rsa2.generate_key_pair()


def write_key(path, key, private=False):
    path.write_bytes(rsa2.private_pem(key) if private else rsa2.public_pem(key))
    return str(path)


@pytest.fixture
def settings(tmp_path, merchant_keys, gateway_keys):
    """Both sides configured with files: the shop's ALIPAY_* and the gateway's ALIPAY_SANDBOX_*."""
    return {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "ALIPAY_APP_ID": APP_ID,
        "ALIPAY_SELLER_ID": SELLER_ID,
        "ALIPAY_APP_PRIVATE_KEY_FILE": write_key(
            tmp_path / "app_private.pem", merchant_keys[0], private=True
        ),
        "ALIPAY_PUBLIC_KEY_FILE": write_key(tmp_path / "alipay_public.pem", gateway_keys[1]),
        "ALIPAY_SANDBOX_PRIVATE_KEY_FILE": write_key(
            tmp_path / "gateway_private.pem", gateway_keys[0], private=True
        ),
        "ALIPAY_SANDBOX_MERCHANT_PUBLIC_KEY_FILE": write_key(tmp_path / "app_public.pem", merchant_keys[1]),
        "ALIPAY_SANDBOX_NOTIFY_SPEEDUP": SPEEDUP,
    }


@pytest.fixture
def gateway(settings):
    """The offline gateway served on loopback; ``gateway.url`` is its gateway.do."""
    with served_gateway(settings) as app:
        yield app


@pytest.fixture
def provider(settings, gateway):
    """The provider, configured against the served gateway, with the real SDK underneath."""
    return AlipayProvider(AlipayConfig.from_settings({**settings, "ALIPAY_GATEWAY_URL": gateway.url}))


@pytest.fixture
def receiver():
    with receiving("/notify/alipay") as shop:
        yield shop


@pytest.fixture
def shop(request, tmp_path, settings):
    """The gateway on its own server (as `gmall-payment alipay-sandbox` runs it) and the shop configured
    for it, with the settings of the closest ``@pytest.mark.settings(...)``: (app, gateway, base_url)."""
    marker = request.node.get_closest_marker("settings")
    overrides = {"RECONCILE_GRACE_SECONDS": 0, **(marker.kwargs if marker else {})}
    with shop_and_gateway(tmp_path, settings, **overrides) as served:
        yield served
