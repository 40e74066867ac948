"""Backends of the flash-sale contracts: the gate and latch in process and on Redis, the
stores in process, on SQLite and on MariaDB.

Redis runs when ``GMALL_TEST_REDIS_URL`` names a server (``redis://127.0.0.1:6379/15``);
each test's keys live under a prefix of their own and are deleted afterwards, one by one
(never FLUSHDB: the server may be shared). Without the URL those tests are deselected,
unless ``GMALL_REQUIRE_SERVICES=1``, which makes a missing URL or server fail the run.
MariaDB is as in ``tests/contract``, whose backends these reuse.
"""

import contextlib
import os
import uuid
from dataclasses import dataclass

import pytest
import redis
from contract.conftest import InProcessBackend, _sql_backend
from support.cluster import PrivateRedisCluster
from support.mariadb import (  # noqa: F401 (a fixture)
    MYSQL_URL,
    REQUIRE_SERVICES,
    mysql_database,
    mysql_server,
    unavailable,
)

from gmall_payment.adapters.inprocess.seckill import (
    InMemorySales,
    InMemorySeckillOrders,
    InProcessLatch,
    InProcessReservationGate,
)
from gmall_payment.adapters.redis import connect
from gmall_payment.adapters.redis.latch import RedisLatch
from gmall_payment.adapters.redis.seckill import RedisReservationGate
from gmall_payment.adapters.sql.seckill import SqlSales, SqlSeckillOrders  # its tables, before create_all
from gmall_payment.core.seckill import UNLIMITED

REDIS_URL = os.environ.get("GMALL_TEST_REDIS_URL")
#: marker -> (the variable naming its server, its value, an example)
SERVICES = {
    "redis": ("GMALL_TEST_REDIS_URL", REDIS_URL, "redis://127.0.0.1:6379/15"),
    "mariadb": ("GMALL_TEST_MYSQL_URL", MYSQL_URL, "mysql+pymysql://root@127.0.0.1:3306"),
}


@pytest.hookimpl(trylast=True)  # after ``-m``
def pytest_collection_modifyitems(config, items):
    """Deselect the tests of a service no URL names, or fail if every service is required."""
    for marker, (variable, url, example) in SERVICES.items():
        needing = [item for item in items if item.get_closest_marker(marker)]
        if url or not needing:
            continue
        if REQUIRE_SERVICES:
            raise pytest.UsageError(
                f"GMALL_REQUIRE_SERVICES=1 but {variable} is unset: set it, e.g. to {example}"
            )
        config.hook.pytest_deselected(items=needing)
        items[:] = [item for item in items if not item.get_closest_marker(marker)]


@pytest.fixture(scope="session")
def redis_client():
    client = connect(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as error:
        unavailable(f"Redis at {REDIS_URL} is unreachable: {error}")
    yield client
    client.close()


@pytest.fixture
def redis_prefix(redis_client):
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"gmall-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    for key in redis_client.scan_iter(match=f"{prefix}*", count=1000):
        redis_client.delete(key)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    """A Redis Cluster of the session's own (three primaries, three replicas)."""
    cluster = PrivateRedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_client(redis_cluster):
    client = connect(redis_cluster.url)
    yield client
    client.close()


@pytest.fixture
def cluster_prefix(cluster_client):
    """A key prefix of this test's own on the cluster; its keys are deleted afterwards."""
    prefix = f"gmall-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    for key in cluster_client.scan_iter(match=f"{prefix}*", count=1000):
        cluster_client.delete(key)


REDIS = pytest.param("redis", marks=pytest.mark.redis)
REDIS_CLUSTER = pytest.param("redis-cluster", marks=pytest.mark.redis)
MARIADB = pytest.param("mariadb", marks=pytest.mark.mariadb)


def _redis(kind, request):
    """The client and the key prefix of a test on the shared Redis or on the cluster."""
    client, prefix = (
        ("cluster_client", "cluster_prefix") if kind == "redis-cluster" else ("redis_client", "redis_prefix")
    )
    return request.getfixturevalue(client), request.getfixturevalue(prefix)


def make_gate(kind, request, limits=UNLIMITED):
    if kind == "inprocess":
        return InProcessReservationGate(limits=limits)
    # A deadline a loaded machine keeps: the contract is not about Redis answering late.
    return RedisReservationGate(*_redis(kind, request), limits, timeout=5)


def make_latch(kind, request):
    if kind == "inprocess":
        return InProcessLatch()
    return RedisLatch(*_redis(kind, request), ttl=60)


@pytest.fixture(params=["inprocess", REDIS, REDIS_CLUSTER])
def gate(request):
    return make_gate(request.param, request)


@pytest.fixture(params=["inprocess", REDIS, REDIS_CLUSTER])
def latch(request):
    return make_latch(request.param, request)


@dataclass
class Shop:
    """A store backend of ``tests/contract`` with the flash sale's stores on it."""

    backend: object
    sales: object
    orders: object

    def context(self):
        """What a thread needs to use the stores (its own app context for SQL)."""
        return self.backend.context()

    def order(self, order_sn):
        with self.backend.uow() as uow:
            return uow.orders.get(order_sn)

    def locks(self, order_sn):
        with self.backend.uow() as uow:
            return uow.stock.locks_for(order_sn)

    def stock_of(self, sku_id):
        return self.backend.stock_of(sku_id)


@contextlib.contextmanager
def make_shop(kind, request, tmp_path):
    if kind == "inprocess":
        backend = InProcessBackend()
        yield Shop(backend, InMemorySales(backend.db), InMemorySeckillOrders(backend.db))
        return
    url = f"sqlite:///{tmp_path / 'seckill.db'}"
    with contextlib.ExitStack() as stack:
        if kind == "mariadb":
            url = stack.enter_context(mysql_database(request.getfixturevalue("mysql_server")))
        backends = _sql_backend(url)
        stack.callback(backends.close)  # drops the tables and leaves the app context
        yield Shop(next(backends), SqlSales(), SqlSeckillOrders())


@pytest.fixture(params=["inprocess", "sqlite", MARIADB])
def shop(request, tmp_path):
    with make_shop(request.param, request, tmp_path) as shop:
        yield shop


@pytest.fixture(
    params=[
        pytest.param(("inprocess", "inprocess"), id="inprocess"),
        pytest.param(("redis", "sqlite"), id="redis-sqlite", marks=pytest.mark.redis),
        pytest.param(
            ("redis", "mariadb"), id="redis-mariadb", marks=[pytest.mark.redis, pytest.mark.mariadb]
        ),
        pytest.param(("redis-cluster", "sqlite"), id="cluster-sqlite", marks=pytest.mark.redis),
    ]
)
def stack(request, tmp_path):
    """A gate, a latch and a shop that work together: in process, or Redis with a database."""
    gate_kind, shop_kind = request.param
    with make_shop(shop_kind, request, tmp_path) as shop:
        yield make_gate(gate_kind, request), make_latch(gate_kind, request), shop
