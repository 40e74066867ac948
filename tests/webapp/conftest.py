"""A shop on a temporary SQLite file with demo data, served for real on loopback."""

import pytest
from support.production import builtin_providers_only  # noqa: F401 (a fixture)
from support.shop import served_shop


@pytest.fixture
def live(tmp_path):
    """The shop on a real HTTP server: mockpay's notify reaches it over the network."""
    with served_shop(tmp_path) as served:
        yield served
