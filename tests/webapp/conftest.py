"""A shop on a temporary SQLite file with demo data, served for real on loopback."""

import pytest
from support.shop import make_app, served_shop


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path)
    yield app
    app.extensions["gmall"].bus.close()  # its in-process worker, if a request started it


@pytest.fixture
def live(tmp_path):
    """The shop on a real HTTP server: mockpay's notify reaches it over the network."""
    with served_shop(tmp_path) as served:
        yield served
