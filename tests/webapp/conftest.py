"""A shop on a temporary SQLite file with demo data, served for real on loopback."""

import threading

import pytest
from support.shop import make_app
from werkzeug.serving import make_server


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path)
    yield app
    app.extensions["gmall"].bus.close()  # its in-process worker, if a request started it


@pytest.fixture
def live(tmp_path):
    """The shop on a real HTTP server: mockpay's notify reaches it over the network."""
    app = make_app(tmp_path)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.config["PUBLIC_URL"] = f"http://127.0.0.1:{server.server_port}"
    try:
        yield app, app.config["PUBLIC_URL"]
    finally:
        server.shutdown()
        thread.join()
        app.extensions["gmall"].bus.close()
