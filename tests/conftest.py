"""What every test shares."""

import functools

import pytest
from werkzeug.security import generate_password_hash

from gmall_payment.adapters.sql import demo


@pytest.fixture(autouse=True, scope="session")
def cheap_demo_passwords():
    """The demo members' passwords hashed with one round of PBKDF2 instead of scrypt (100 ms
    each, twice per shop the tests make, and again at each login). Logins still check them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo, "generate_password_hash", functools.partial(generate_password_hash, method="pbkdf2:sha256:1"))
        yield
