"""The shop on real services for tests/services/: servers, worker processes, orders to pay."""

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import redis
import requests
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from gmall_payment.adapters.sql import fixtures
from gmall_payment.adapters.sql.models import (
    FulfilmentTrace,
    Member,
    Order,
    OutboxEvent,
    PointsLedger,
    StockLock,
    WareSku,
    db,
)
from gmall_payment.core.fulfilment import FULFILMENT_STEPS
from gmall_payment.core.model import LockStatus, OrderItem
from gmall_payment.core.model import Order as OrderModel
from gmall_payment.webapp import create_app
from support.forms import logged_in
from support.shop import copy_test_keys, notify_params

from . import processes
from .mariadb import unavailable

REDIS_URL = os.environ.get("GMALL_TEST_REDIS_URL")
BIN = Path(sys.executable).parent
PASSWORD = "secret123"
OPERATOR_TOKEN = "services-test-operator-token-0123456789"

#: Settings of the shop under test: quick retries and sweeps, a quickly noticed dead worker.
FAST = {
    "STEP_MAX_RETRIES": 8,
    "STEP_MIN_BACKOFF_SECONDS": 0.2,
    "STEP_MAX_BACKOFF_SECONDS": 1,
    "OUTBOX_SWEEP_SECONDS": 1,
    "OUTBOX_REDELIVER_SECONDS": 8,
    "REDIS_HEARTBEAT_TIMEOUT_SECONDS": 3,
    "REDIS_MAINTENANCE_CHANCE": 1_000_000,
}


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: each probe stays bound until all are chosen, so one
    freed port is never handed out twice (a cluster picks twelve before it starts a node)."""
    with contextlib.ExitStack() as probes:
        ports = []
        for _ in range(count):
            probe = probes.enter_context(socket.socket())
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
        return ports


class PrivateRedis:
    """A redis-server of this test's own, on a free port, keeping nothing on disk; on a
    ``host`` of tests/support/hosts.py, on its address, else on loopback."""

    def __init__(self, directory: Path, *options: str, host=None, port=None):
        self.port = port or free_port()
        self.address = host.address if host else "127.0.0.1"
        self.launcher = host.launcher if host else []
        self.url = f"redis://{self.address}:{self.port}/0"
        self.directory = directory
        self.options = options  # more redis-server arguments, e.g. ("--replicaof", host, port)
        self.process = None

    def start(self):
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed (Debian: apt-get install redis-server)")
        self.process = subprocess.Popen(
            [
                *self.launcher,
                binary,
                *self.options,
                "--port",
                str(self.port),
                "--bind",
                self.address,
                "--protected-mode",  # it refuses other hosts without a password, even when bound for them
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(self.address, self.port)
        wait_until(lambda: _pings(client), 10, "private redis-server did not start")
        client.close()

    def pause(self):
        processes.pause(self.process)

    def resume(self):
        processes.resume(self.process)

    def kill(self):
        """SIGKILL, as a crash: what it held is gone (it keeps nothing on disk)."""
        self.process.kill()
        self.process.wait(10)
        self.process = None

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.RedisError:
        return False


def wait_until(predicate, timeout, message):
    """Poll ``predicate`` until it holds; fail with ``message`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} (after {timeout}s)")
        time.sleep(0.1)


def gunicorn_command(bind: str, connections: int) -> list[str]:
    """gunicorn serving the shop as docs/deployment.md deploys it (its config, gevent), in one
    worker of ``connections`` on ``bind``."""
    return [
        *(sys.executable, "-m", "gunicorn", "-c", "python:gmall_payment.webapp.gunicorn_conf"),
        *("-k", "gevent", "-w", "1", "--worker-connections", str(connections), "-b", bind),
        "gmall_payment.webapp:create_app()",
    ]


@contextlib.contextmanager
def gunicorn_gevent(shop, log_path):
    """The shop's app in one gevent worker of gunicorn (docs/deployment.md); yields its base URL."""
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            gunicorn_command(f"127.0.0.1:{port}", 100),
            env=shop.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url) or process.poll() is not None, 60, "gunicorn did not start")
        assert process.poll() is None, log_path.read_text()
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _answers(url) -> bool:
    with contextlib.suppress(requests.ConnectionError, requests.Timeout):  # starting, or slow to
        return requests.get(f"{url}/login", timeout=5).status_code == 200
    return False


class WorkerProcess:
    """``dramatiq gmall_payment.webapp.worker`` in a session of its own, logging to a file; on a
    ``host`` of tests/support/hosts.py, inside it."""

    def __init__(self, env: dict, log_path: Path, threads: int = 4, host=None):
        self.env = env
        self.launcher = host.launcher if host else []
        self.log_path = log_path
        self.threads = threads
        self.process = None
        self.exit_codes = []

    def start(self):
        assert self.process is None, "already running"
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [
                *self.launcher,
                str(BIN / "dramatiq"),
                "gmall_payment.webapp.worker",
                "--processes",
                "1",
                "--threads",
                str(self.threads),
                "--worker-shutdown-timeout",
                "5000",
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_until(
            lambda: "Worker process is ready for action" in self.log() or self.process.poll() is not None,
            60,
            "the worker did not start",
        )
        assert self.process.poll() is None, f"the worker exited at start:\n{self.log()[-3000:]}"

    def kill(self, sig=signal.SIGKILL):
        """Send ``sig`` to the worker's whole process group (main process and workers)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        self.exit_codes.append(self.process.wait(30))
        self.process = None

    def stop(self):
        if self.process is None:
            return
        self.kill(signal.SIGTERM) if self._stops_in_time() else self.kill()

    def _stops_in_time(self) -> bool:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
            return True
        except subprocess.TimeoutExpired:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Shop:
    """The shop on MariaDB and Redis: web side here, worker in subprocesses, orders to pay."""

    def __init__(self, tmp_path, database_url, redis_url, namespace, **settings):
        self.tmp_path = tmp_path
        self.settings = {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_NAMESPACE": namespace,
            "SECRET_KEY": "test-only",
            "PROVIDERS": "mockpay",
            "OPERATOR_TOKEN": OPERATOR_TOKEN,
            **FAST,
            **settings,
        }
        copy_test_keys(tmp_path / "instance")
        self.app = create_app({"TESTING": True, **self.settings})
        with self.app.app_context():
            db.create_all()
        self.services = self.app.extensions["gmall"]
        self.key = self.services.providers.get("mockpay").config.private_key
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        # The workers call the providers' sandboxes mounted here (query, refund, close).
        self.settings["PUBLIC_URL"] = self.app.config["PUBLIC_URL"] = self.url
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        self.workers = []
        self.payments = {}
        self.orders = []

    def env(self, **settings) -> dict:
        """The environment of the shop's processes: its settings (these instead, if given)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GMALL_")}
        env.update({f"GMALL_{key}": str(value) for key, value in {**self.settings, **settings}.items()})
        return env

    def worker(self, threads=4, **settings) -> WorkerProcess:
        """A worker of the shop (on ``settings`` of its own, if given), not started yet."""
        worker = WorkerProcess(
            self.env(**settings), self.tmp_path / f"worker-{len(self.workers)}.log", threads
        )
        self.workers.append(worker)
        return worker

    def close(self):
        for worker in self.workers:
            worker.stop()
        self.server.shutdown()
        self.app.extensions["sessions"].close()
        self._thread.join(10)
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()

    # arranging

    def arrange(self, orders: int, members: int = 10, seed: int = 7):
        """Members, three SKUs with stock, and ``orders`` orders awaiting payment with locked stock,
        each with a payment started with mockpay."""
        rng = random.Random(seed)
        with self.app.app_context():
            for member_id in range(1, members + 1):
                fixtures.add_member(member_id, f"m{member_id}", generate_password_hash(PASSWORD))
            for sku_id in (1, 2, 3):
                fixtures.add_sku(sku_id, f"SKU {sku_id}", 10_000, Decimal(f"{sku_id}9.90"))
            for n in range(orders):
                sku_id, quantity = rng.choice((1, 2, 3)), rng.randint(1, 3)
                amount = Decimal(f"{sku_id}9.90") * quantity
                order = OrderModel(
                    order_sn=f"T{n:05d}{uuid.uuid4().hex[:8]}",
                    member_id=rng.randint(1, members),
                    status=0,
                    pay_amount=amount,
                    integration=int(amount),
                    growth=rng.randint(1, 50),
                    items=[OrderItem(sku_id, f"SKU {sku_id}", quantity, Decimal(f"{sku_id}9.90"))],
                )
                fixtures.add_order(order, [(sku_id, quantity)])
                self.payments[order.order_sn] = self.services.payments.start(order.order_sn, "mockpay")
                self.orders.append(order)
        return self.orders

    # acting

    def notify(self, order_sn) -> str:
        params = notify_params(self.payments[order_sn], self.key)
        response = requests.post(f"{self.url}/notify/mockpay", data=params, timeout=30)
        return response.text

    def notify_all(self, order_sns, threads=8, rate=None) -> list[str]:
        """Post each order's signed notification (``rate`` per second at most); the answers."""

        def send(indexed):
            index, order_sn = indexed
            if rate:
                time.sleep(max(0.0, started + index / rate - time.monotonic()))
            return self.notify(order_sn)

        started = time.monotonic()
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(send, enumerate(order_sns)))

    def login(self, member_id):
        return logged_in(self.app, f"m{member_id}", PASSWORD)

    # observing

    def count(self, statement) -> int:
        with self.app.app_context():
            return db.session.scalar(statement)

    def awarded(self) -> int:
        return self.count(select(func.count()).select_from(PointsLedger))

    def fulfilled(self) -> int:
        """Orders with their order paid, their stock deducted and their points awarded."""
        return self.count(
            select(func.count())
            .select_from(Order)
            .where(
                Order.status == 1,
                Order.order_sn.in_(select(PointsLedger.order_sn)),
                ~Order.order_sn.in_(
                    select(StockLock.order_sn).where(StockLock.status == int(LockStatus.LOCKED))
                ),
            )
        )

    def wait_fulfilled(self, n, timeout=120):
        wait_until(
            lambda: self.fulfilled() >= n,
            timeout,
            f"only {self.fulfilled()} of {n} orders fulfilled; worker log:\n"
            + "\n".join(w.log()[-3000:] for w in self.workers),
        )

    def assert_fulfilled_exactly_once(self, orders=None):
        """Every order paid, every lock deducted once, every member's points awarded once:
        the totals match exactly, and each step took effect exactly once per order."""
        orders = self.orders if orders is None else orders
        sns = [o.order_sn for o in orders]
        # A crash between publishing and marking sent leaves a row unsent whose steps may all
        # have run: the sweep sends it again (after its grace), and then it takes no effect.
        unsent = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.sent_time.is_(None))
        wait_until(lambda: self.count(unsent) == 0, 60, "the outbox did not drain")
        with self.app.app_context():
            statuses = dict(
                db.session.execute(select(Order.order_sn, Order.status).where(Order.order_sn.in_(sns))).all()
            )
            assert set(statuses.values()) == {1}, "an order is not awaiting shipment"
            assert len(statuses) == len(orders)
            locks = db.session.scalars(select(StockLock.status)).all()
            assert set(locks) == {int(LockStatus.DEDUCTED)} and len(locks) == len(self.orders)
            sold = {sku_id: 0 for sku_id in (1, 2, 3)}
            for order in self.orders:
                sold[order.items[0].sku_id] += order.items[0].quantity
            stock = {
                s.sku_id: (s.stock, s.stock_locked, s.sales) for s in db.session.scalars(select(WareSku))
            }
            assert stock == {sku_id: (10_000 - n, 0, n) for sku_id, n in sold.items()}
            expected = {}
            for order in self.orders:
                integration, growth = expected.get(order.member_id, (0, 0))
                expected[order.member_id] = (integration + order.integration, growth + order.growth)
            points = {
                m.id: (m.integration, m.growth)
                for m in db.session.scalars(select(Member))
                if m.id in expected
            }
            assert points == expected
            ledger = db.session.scalars(
                select(PointsLedger.order_sn).where(PointsLedger.kind == "award")
            ).all()
            assert sorted(ledger) == sorted(o.order_sn for o in self.orders)
            done = db.session.execute(
                select(FulfilmentTrace.order_sn, FulfilmentTrace.step, func.count())
                .where(FulfilmentTrace.outcome == "done", FulfilmentTrace.step.in_(FULFILMENT_STEPS))
                .group_by(FulfilmentTrace.order_sn, FulfilmentTrace.step)
            ).all()
            assert sorted((sn, step) for sn, step, _ in done) == sorted(
                (o.order_sn, step) for o in self.orders for step in FULFILMENT_STEPS
            )
            assert {n for _, _, n in done} == {1}
