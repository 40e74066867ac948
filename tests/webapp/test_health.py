"""/healthz answers whatever the dependencies do; /readyz names the ones that do not answer."""

import time

import pytest
from support.mariadb import PrivateMariaDB
from support.services import PrivateRedis, free_port
from support.shop import make_app, wait_for

from gmall_payment.webapp import create_app


def test_the_embedded_shop_is_healthy_and_ready(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["status"] == "ready"
    assert set(ready.get_json()["checks"]) == {"database"}  # no Redis on the embedded default
    assert ready.get_json()["checks"]["database"]["ok"] is True


def test_a_database_that_is_down_makes_the_shop_unready_but_not_unhealthy(tmp_path):
    closed = f"mysql+pymysql://root@127.0.0.1:{free_port()}/gmall"  # nothing listens there
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": closed,
            "SECRET_KEY": "test-only",
        }
    )
    client = app.test_client()
    try:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
    finally:
        app.extensions["gmall"].bus.close()  # its in-process worker, started by the first request
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["failed"] == ["database"]
    assert "OperationalError" in body["checks"]["database"]["error"]


def test_a_redis_that_is_down_is_named_for_the_gate_and_the_broker(tmp_path):
    app = make_app(tmp_path, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["failed"] == ["broker", "redis"]
    assert ready.get_json()["checks"]["database"]["ok"] is True
    assert "ConnectionError" in ready.get_json()["checks"]["redis"]["error"]


@pytest.mark.redis
def test_a_broker_redis_of_its_own_that_is_down_is_named_alone(tmp_path):
    server = PrivateRedis(tmp_path)  # the gate's, up
    server.start()
    try:
        app = make_app(tmp_path, REDIS_URL=server.url, BROKER_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
        ready = app.test_client().get("/readyz")
    finally:
        server.stop()
    assert ready.status_code == 503
    assert ready.get_json()["failed"] == ["broker"]
    assert ready.get_json()["checks"]["redis"]["ok"] is True


@pytest.mark.redis
def test_a_redis_that_hangs_is_unready_within_the_timeout(tmp_path):
    """A stopped (SIGSTOP) Redis accepts connections and never answers: readiness must not hang."""
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        app = make_app(tmp_path, REDIS_URL=server.url, READINESS_TIMEOUT_SECONDS=0.5)
        client = app.test_client()
        # Ready first: the first probes also connect, which a loaded machine may not do in 0.5 s.
        wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30)
        server.pause()
        started = time.monotonic()
        ready = client.get("/readyz")
        took = time.monotonic() - started
        server.resume()
        assert ready.status_code == 503
        assert ready.get_json()["failed"] == ["broker", "redis"]
        error = ready.get_json()["checks"]["redis"]["error"]
        assert "no answer within 0.5 s" in error or error.startswith(
            "TimeoutError"
        )  # the deadline or the socket's
        assert took < 5  # a bound on a slow machine, not a target: the timeout is 0.5 s
        assert client.get("/readyz").status_code == 200  # and ready again once it answers
    finally:
        server.stop()


@pytest.mark.services
def test_a_database_that_hangs_is_unready_within_the_timeout(tmp_path):
    """A paused (SIGSTOP) MariaDB of the test's own: connections open, nothing answers."""
    server = PrivateMariaDB(tmp_path)
    server.start()
    app = None
    try:
        app = make_app(tmp_path, DATABASE_URL=server.url, READINESS_TIMEOUT_SECONDS=0.5)
        client = app.test_client()
        # Ready first: the first probes also connect, which a loaded machine may not do in 0.5 s.
        wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30)
        server.pause()
        started = time.monotonic()
        ready = client.get("/readyz")
        took = time.monotonic() - started
        assert client.get("/healthz").status_code == 200  # the process still answers
        server.resume()
        assert ready.status_code == 503, ready.get_json()
        assert ready.get_json()["failed"] == ["database"]
        assert ready.get_json()["checks"]["database"]["error"] == "no answer within 0.5 s"
        assert took < 5  # a bound on a slow machine, not a target
        wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30)
    finally:
        if app is not None:
            app.extensions["gmall"].bus.close()
        server.stop()
