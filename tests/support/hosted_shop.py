"""The shop deployed as docs/deployment.md draws it, on hosts of tests/support/hosts.py.

A data host (MariaDB and Redis of its own), two web hosts (gunicorn's gevent workers), two
worker hosts (``dramatiq`` workers), a load-balancer host (Debian's HAProxy: health checks on
``/readyz``, client addresses set in ``X-Forwarded-For``, the shop trusting one proxy) and a
client host with several addresses. The test process arranges and observes through the
control app, on the same database and Redis over its own leg of the network.
"""

import contextlib
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor

import requests

from gmall_payment.adapters.sql.models import db
from gmall_payment.webapp import create_app
from support.shop import copy_test_keys

from .mariadb import PrivateMariaDB
from .services import FAST, OPERATOR_TOKEN, PrivateRedis, WorkerProcess, gunicorn_command, wait_until

WEB_PORT = 8000
#: The shop has MariaDB end a session idle this long in a write transaction (a host gone with
#: its locks: DATABASE_IDLE_WRITE_TIMEOUT_SECONDS, docs/deployment.md).
IDLE_WRITE_SECONDS = 10
#: The hosts, by name: the last part of each address.
ADDRESSES = {"balancer": 2, "data": 10, "web1": 11, "web2": 12, "worker1": 21, "worker2": 22, "client": 100}

HAPROXY = """\
global
    maxconn 4096
    log stdout format raw local0 notice
defaults
    mode http
    log global
    timeout connect 2s
    timeout check 5s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch
frontend shop
    bind {address}:80
    http-request set-header X-Forwarded-For %[src]
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    http-request set-header X-Forwarded-Port %[dst_port]
    default_backend web
backend web
    balance roundrobin
    option httpchk GET /readyz
{servers}
"""


class HostProcess:
    """A command running inside a host, in a session of its own, logging to a file."""

    def __init__(self, host, command, env, log_path):
        self.log_path = log_path
        with log_path.open("w") as log:
            self.process = subprocess.Popen(
                [*host.launcher, *command],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self):
        """SIGKILL the process and its children (a host's server dying at once)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(20)

    def wait_serving(self, url):
        """Wait until ``url`` is ready; fail with the log if the process exits first."""
        wait_until(lambda: _ready(url) or self.process.poll() is not None, 60, f"{url} did not start")
        assert self.process.poll() is None, self.log()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


class HostedShop:
    """``start()`` brings every host's servers up and waits until the balancer serves the shop."""

    def __init__(self, network, directory, client_addresses: int, **settings):
        self.directory = directory
        self.hosts = {name: network.host(name, suffix) for name, suffix in ADDRESSES.items()}
        for extra in range(1, client_addresses):
            self.hosts["client"].add_address(network.address(ADDRESSES["client"] + extra))
        self.url = f"http://{self.hosts['balancer'].address}"
        self.mariadb = PrivateMariaDB(directory, host=self.hosts["data"])  # on MariaDB's defaults
        self.redis = PrivateRedis(directory, host=self.hosts["data"])
        self.settings = {
            "INSTANCE_PATH": str(directory / "instance"),
            "DATABASE_URL": self.mariadb.url,
            "REDIS_URL": self.redis.url,
            "REDIS_NAMESPACE": "gmall",
            "SECRET_KEY": "test-only-hosts-secret-key",
            "PROVIDERS": "mockpay",
            "OPERATOR_TOKEN": OPERATOR_TOKEN,
            "PUBLIC_URL": self.url,
            "TRUSTED_PROXIES": 1,
            # The shop's own, per session: a worker host cut off mid-batch lets go of the stock row.
            "DATABASE_IDLE_WRITE_TIMEOUT_SECONDS": IDLE_WRITE_SECONDS,
            **FAST,
            **settings,
        }
        self.app = None
        self.web = {}
        self.workers = {}
        self.balancer = None

    @property
    def services(self):
        return self.app.extensions["gmall"]

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GMALL_")}
        env.update({f"GMALL_{key}": str(value) for key, value in self.settings.items()})
        return env

    def start(self):
        self.mariadb.start()
        self.redis.start()
        copy_test_keys(self.directory / "instance")
        self.app = create_app({"TESTING": True, **self.settings})
        with self.app.app_context():
            db.create_all()
        for name in ("web1", "web2"):
            self.web[name] = self._gunicorn(self.hosts[name])
        for name in ("worker1", "worker2"):
            self.workers[name] = WorkerProcess(
                self.env(), self.directory / f"{name}.log", threads=4, host=self.hosts[name]
            )
        with ThreadPoolExecutor(2) as pool:  # each takes seconds to import the shop
            list(pool.map(WorkerProcess.start, self.workers.values()))
        self.balancer = self._haproxy()
        for name, server in self.web.items():
            server.wait_serving(f"http://{self.hosts[name].address}:{WEB_PORT}")
        self.balancer.wait_serving(self.url)

    def _gunicorn(self, host) -> HostProcess:
        command = gunicorn_command(f"{host.address}:{WEB_PORT}", 200)
        return HostProcess(host, command, self.env(), self.directory / f"{host.name}.log")

    def _haproxy(self) -> HostProcess:
        host = self.hosts["balancer"]
        servers = "\n".join(
            f"    server {name} {self.hosts[name].address}:{WEB_PORT} check inter 1s fall 3 rise 2"
            for name in self.web
        )
        config = self.directory / "haproxy.cfg"
        config.write_text(HAPROXY.format(address=host.address, servers=servers))
        return HostProcess(
            host, ["haproxy", "-db", "-f", str(config)], self.env(), self.directory / "haproxy.log"
        )

    def kill_web(self, name):
        self.web[name].kill()

    def stop(self):
        """Stop whatever was started (the network's ``destroy`` kills anything left)."""
        for worker in self.workers.values():
            if worker.process is not None:
                worker.kill()
        for process in [*self.web.values(), self.balancer]:
            if process is not None:
                process.kill()
        if self.app is not None:
            with self.app.app_context():
                db.session.remove()
                db.engine.dispose()
        self.redis.stop()
        self.mariadb.stop()

    def logs(self) -> str:
        parts = [f"--- {name}\n{p.log()}" for name, p in {**self.web, "balancer": self.balancer}.items() if p]
        parts += [f"--- {name}\n{w.log()[-3000:]}" for name, w in self.workers.items()]
        return "\n".join(parts)


def _ready(url) -> bool:
    with contextlib.suppress(requests.RequestException):
        return requests.get(f"{url}/readyz", timeout=5).status_code == 200
    return False
