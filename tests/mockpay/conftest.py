"""Fixtures for mockpay: one key pair per session (RSA generation is slow) and a shop stand-in."""

import threading

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

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


class Receiver:
    """The shop's notify endpoint: records each post, answers ``failure`` ``failures`` times first.

    ``failure_status`` is the HTTP status of those answers (500: a shop that crashed).
    """

    def __init__(self, failures=0, failure_status=200):
        self.failures = failures
        self.failure_status = failure_status
        self.received = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.received.append(request.form.to_dict())
            failing = len(self.received) <= self.failures
        response = Response("failure", status=self.failure_status) if failing else Response("success")
        return response(environ, start_response)


@pytest.fixture
def receiver():
    """A Receiver served over real HTTP on loopback; ``receiver.url`` is its notify URL."""
    shop = Receiver()
    server = make_server("127.0.0.1", 0, shop, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    shop.url = f"http://127.0.0.1:{server.server_port}/notify"
    yield shop
    server.shutdown()
    thread.join(5)
