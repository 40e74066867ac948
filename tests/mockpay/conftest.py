"""Fixtures for mockpay: one key pair per session (RSA generation is slow) and a shop stand-in."""

import pytest
from support.servers import Receiver, serving

from gmall_payment.plugins import signing

FAST_SCHEDULE = "0,0.05,0.1"


@pytest.fixture(scope="session")
def key_pair():
    return signing.generate_key_pair()


@pytest.fixture(scope="session")
def other_key_pair():
    return signing.generate_key_pair()


@pytest.fixture
def settings(tmp_path, key_pair):
    """Settings with configured key files and a schedule short enough for tests."""
    private_key, public_key = key_pair
    private_file = tmp_path / "private.pem"
    public_file = tmp_path / "public.pem"
    private_file.write_bytes(signing.private_pem(private_key))
    public_file.write_bytes(signing.public_pem(public_key))
    return {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "MOCKPAY_PRIVATE_KEY_FILE": str(private_file),
        "MOCKPAY_PUBLIC_KEY_FILE": str(public_file),
        "MOCKPAY_NOTIFY_SCHEDULE": FAST_SCHEDULE,
    }


@pytest.fixture
def receiver():
    """A Receiver served over real HTTP on loopback; ``receiver.url`` is its notify URL."""
    shop = Receiver()
    with serving(shop) as base_url:
        shop.url = f"{base_url}/notify"
        yield shop
