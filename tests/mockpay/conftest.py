"""Fixtures for mockpay: one key pair per session (RSA generation is slow) and a shop stand-in."""

from datetime import datetime

import pytest
from support.servers import receiving

from gmall_payment.plugins import rsa2
from gmall_payment.plugins.alipay_protocol import TIME_FORMAT

FAST_SCHEDULE = "0,0.05,0.1"


@pytest.fixture(scope="session")
def key_pair():
    return rsa2.generate_key_pair()


@pytest.fixture(scope="session")
def other_key_pair():
    return rsa2.generate_key_pair()


@pytest.fixture(scope="session")
def merchant_key_pair():
    return rsa2.generate_key_pair()


@pytest.fixture
def settings(tmp_path, key_pair, merchant_key_pair):
    """Settings with configured key files (the sandbox's, the shop's) and a short schedule."""
    files = {}
    for prefix, (private_key, public_key) in (
        ("MOCKPAY_", key_pair),
        ("MOCKPAY_MERCHANT_", merchant_key_pair),
    ):
        private_file, public_file = tmp_path / f"{prefix}private.pem", tmp_path / f"{prefix}public.pem"
        private_file.write_bytes(rsa2.private_pem(private_key))
        public_file.write_bytes(rsa2.public_pem(public_key))
        files.update(
            {f"{prefix}PRIVATE_KEY_FILE": str(private_file), f"{prefix}PUBLIC_KEY_FILE": str(public_file)}
        )
    return {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        **files,
        "MOCKPAY_NOTIFY_SCHEDULE": FAST_SCHEDULE,
    }


@pytest.fixture
def signed_request(merchant_key_pair):
    """``signed_request(params)``: a request to the sandbox's API as the shop's server signs it."""

    def sign(params):
        params = {
            "app_id": "mockpay-sandbox",
            "sign_type": "RSA2",
            "timestamp": datetime.now().strftime(TIME_FORMAT),
            **params,
        }
        params["sign"] = rsa2.sign(params, merchant_key_pair[0], rsa2.REQUEST_UNSIGNED_FIELDS)
        return params

    return sign


@pytest.fixture
def receiver():
    """A Receiver served over real HTTP on loopback; ``receiver.url`` is its notify URL."""
    with receiving("/notify") as shop:
        yield shop
