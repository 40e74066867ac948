"""A shop in production mode for the tests: every setting a production start asks for, with
throw-away keys made for the test run (never real ones), on the test's own SQLite file."""

import functools

import pluggy
import pytest

from gmall_payment.plugins import rsa2
from support.shop import make_app

#: Throw-away values, for tests only.
SECRET_KEY = "test-only-production-secret-key-0123456789abcdef"
OPERATOR_TOKEN = "test-only-operator-token-0123456789abcdef"
PUBLIC_URL = "https://pay.example.com"


@functools.cache
def _alipay_keys():
    """(merchant pair, Alipay's pair), made once per test run."""
    return rsa2.generate_key_pair(), rsa2.generate_key_pair()


def alipay_settings(tmp_path) -> dict:
    """Alipay configured with keys (files under ``tmp_path``) against its production gateway."""
    (merchant_private, _), (_, alipay_public) = _alipay_keys()
    private_file, public_file = tmp_path / "app_private.pem", tmp_path / "alipay_public.pem"
    private_file.write_bytes(rsa2.private_pem(merchant_private))
    public_file.write_bytes(rsa2.public_pem(alipay_public))
    return {
        "ALIPAY_APP_ID": "2021000000000777",
        "ALIPAY_SELLER_ID": "2088000000000777",
        "ALIPAY_APP_PRIVATE_KEY_FILE": str(private_file),
        "ALIPAY_PUBLIC_KEY_FILE": str(public_file),
        "ALIPAY_GATEWAY_URL": "production",
    }


def production_settings(tmp_path, **overrides) -> dict:
    """What a production start needs (Redis at a port nothing listens on: no test here reaches it)."""
    return {
        "PRODUCTION": True,
        "SECRET_KEY": SECRET_KEY,
        "OPERATOR_TOKEN": OPERATOR_TOKEN,
        "PUBLIC_URL": PUBLIC_URL,
        "REDIS_URL": "redis://127.0.0.1:1/0",
        **alipay_settings(tmp_path),
        **overrides,
    }


def production_config(tmp_path, **overrides) -> dict:
    """``production_settings`` as ``create_app`` takes them; None as a value leaves that setting out."""
    settings = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.db'}",
        **production_settings(tmp_path, **overrides),
    }
    return {key: value for key, value in settings.items() if value is not None}


@pytest.fixture
def builtin_providers_only(monkeypatch):
    """Only the providers inside gmall-payment (mockpay, alipay): no entry point is loaded.

    A production shop with a provider installed beside it and not configured rightly refuses to
    start (gmall-payment-wechatpay without its keys, as the README's first command installs it);
    the production tests are about the shop's own providers, in a venv with it or without.
    """
    monkeypatch.setattr(pluggy.PluginManager, "load_setuptools_entrypoints", lambda self, group, name=None: 0)


def make_production_app(tmp_path, **overrides):
    """A production shop from ``make_app`` (its tables made, the demo seeded)."""
    return make_app(tmp_path, **production_settings(tmp_path, **overrides))
