"""A shop on a temporary SQLite file with demo data, served for real on loopback."""

import pytest
from support.servers import serving
from support.shop import make_app


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path)
    yield app
    app.extensions["gmall"].bus.close()  # its in-process worker, if a request started it


@pytest.fixture
def live(tmp_path):
    """The shop on a real HTTP server: mockpay's notify reaches it over the network."""
    app = make_app(tmp_path)
    with serving(app) as base_url:
        app.config["PUBLIC_URL"] = base_url
        try:
            yield app, base_url
        finally:
            app.extensions["gmall"].bus.close()
