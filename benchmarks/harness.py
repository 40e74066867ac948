"""What the benchmarks share: a fresh MariaDB database and Redis namespace, the shop's
settings for them, processes started in sessions of their own, and cleaning all that up
whatever happens."""

import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import redis
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from gmall_payment.adapters.sql.models import db
from gmall_payment.webapp import create_app

BIN = Path(sys.executable).parent


class Harness:
    """``with Harness(mysql_url, redis_url, **settings) as h``: ``h.app`` is the shop on a
    database of its own (tables made) and a Redis namespace of its own; ``h.start(name,
    command)`` runs a process with the shop's settings in its environment."""

    def __init__(self, mysql_url: str, redis_url: str, **settings):
        self.redis_url = redis_url
        self.folder = Path(tempfile.mkdtemp(prefix="gmall-bench-"))
        self.server = create_engine(mysql_url, isolation_level="AUTOCOMMIT")
        self.database = f"gmall_bench_{uuid.uuid4().hex[:10]}"
        self.namespace = f"gmall-bench-{uuid.uuid4().hex[:10]}"
        self.port = free_port()
        self.processes = []
        self.settings = {
            "INSTANCE_PATH": str(self.folder / "instance"),
            "DATABASE_URL": make_url(mysql_url).set(database=self.database).render_as_string(hide_password=False),
            "REDIS_URL": redis_url,
            "REDIS_NAMESPACE": self.namespace,
            "SECRET_KEY": "benchmark-only",
            "PROVIDERS": "mockpay",
            **settings,
        }
        self.extra_env = {}

    def __enter__(self):
        with self.server.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE `{self.database}` CHARACTER SET utf8mb4")
        self.app = create_app(dict(self.settings))
        with self.app.app_context():
            db.create_all()
        return self

    def __exit__(self, *exc_info):
        self.stop_processes()
        with self.app.app_context():
            db.engine.dispose()
        with self.server.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE `{self.database}`")
        self.server.dispose()
        client = redis.Redis.from_url(self.redis_url)
        for pattern in (f"{self.namespace}:*", f"LIMITER/{self.namespace}/*"):
            for key in client.scan_iter(pattern):
                client.delete(key)
        client.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def start(self, name: str, command: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GMALL_")}
        env.update({f"GMALL_{key}": str(value) for key, value in self.settings.items()}, **self.extra_env)
        log = (self.folder / f"{name}.log").open("w")
        self.processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True))

    def stop_processes(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        self.processes = []

    def exited(self) -> bool:
        return any(p.poll() is not None for p in self.processes)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in sorted(self.folder.glob("*.log")))


def add_service_options(parser) -> None:
    """--mysql-url and --redis-url, defaulting to the test suite's servers."""
    parser.add_argument("--mysql-url", default=os.environ.get("GMALL_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306"))
    parser.add_argument("--redis-url", default=os.environ.get("GMALL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))


def percentile(values, percent):
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1] if len(values) > 1 else values[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
