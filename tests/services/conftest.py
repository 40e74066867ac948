"""Fault tests on the real services: MariaDB, Redis and `dramatiq` worker processes.

Each test gets its own MariaDB database (random name, dropped afterwards) and its own Redis
namespace on GMALL_TEST_REDIS_URL (its keys deleted afterwards); a test that stops Redis
starts a private ``redis-server`` on a free port and stops only that one. The shop's web
side runs in the test process on a loopback HTTP server (mockpay's notifications arrive over
real HTTP); the worker is a ``dramatiq gmall_payment.webapp.worker`` subprocess, killed at
the end whatever happened.

Without GMALL_TEST_MYSQL_URL and GMALL_TEST_REDIS_URL these tests are deselected, unless
GMALL_REQUIRE_SERVICES=1 (CI, ``tox -e services``), where a missing service fails the run.
"""

import uuid

import pytest
import redis
from support.cluster import PrivateRedisCluster
from support.mariadb import MYSQL_URL, REQUIRE_SERVICES, mysql_database, mysql_server, unavailable  # noqa: F401 (a fixture)
from support.services import REDIS_URL, PrivateRedis, Shop


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Deselect the services tests when their servers are not named (and none is required)."""
    needing = [item for item in items if item.get_closest_marker("services")]
    missing = [
        name
        for name, value in (("GMALL_TEST_MYSQL_URL", MYSQL_URL), ("GMALL_TEST_REDIS_URL", REDIS_URL))
        if not value
    ]
    if not needing or not missing:
        return
    if REQUIRE_SERVICES:
        raise pytest.UsageError(
            f"GMALL_REQUIRE_SERVICES=1 but {' and '.join(missing)} unset (see tox.ini [testenv:services])"
        )
    config.hook.pytest_deselected(items=needing)
    items[:] = [item for item in items if not item.get_closest_marker("services")]


@pytest.fixture
def database_url(request):
    with mysql_database(request.getfixturevalue("mysql_server")) as url:
        yield url


@pytest.fixture
def redis_namespace():
    """A namespace of our own on the shared Redis; its keys are deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        unavailable(f"Redis at {REDIS_URL} is unreachable: {error}")
    namespace = f"gmall-test-{uuid.uuid4().hex[:12]}"
    yield namespace
    for key in client.scan_iter(f"{namespace}:*"):
        client.delete(key)
    client.close()


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_shop(tmp_path, database_url, redis_namespace):
    made = []

    def make(redis_url=None, **settings):
        shop = Shop(tmp_path, database_url, redis_url or REDIS_URL, redis_namespace, **settings)
        made.append(shop)
        return shop

    yield make
    for shop in made:
        shop.close()


@pytest.fixture
def cluster(tmp_path):
    """A Redis Cluster of the test's own: three primaries, a replica each."""
    servers = PrivateRedisCluster(tmp_path / "cluster")
    servers.start()
    try:
        yield servers
    finally:
        servers.stop()
