"""The MariaDB server of GMALL_TEST_MYSQL_URL, and fresh databases on it, for the tests that need one.

Unreachable, it skips those tests, or fails them when GMALL_REQUIRE_SERVICES=1 asks for every
service (CI), rather than passing with less tested.
"""

import contextlib
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from . import processes

MYSQL_URL = os.environ.get("GMALL_TEST_MYSQL_URL")
REQUIRE_SERVICES = os.environ.get("GMALL_REQUIRE_SERVICES") == "1"


def unavailable(message):
    """Skip, or fail when the services are required."""
    if REQUIRE_SERVICES:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def mysql_server():
    """An engine on the server (no database)."""
    if not MYSQL_URL:
        unavailable("GMALL_TEST_MYSQL_URL is not set (tox -e mariadb and tox -e services set it)")
    engine = create_engine(MYSQL_URL, isolation_level="AUTOCOMMIT")
    reason = _unreachable(engine)
    if reason:
        unavailable(f"MariaDB at {MYSQL_URL} is unreachable: {reason}")
    yield engine
    engine.dispose()


def _unreachable(engine) -> str | None:
    """Why the server does not answer, or None; outside ``except`` so a failure reads short."""
    try:
        engine.connect().close()
    except OperationalError as error:
        return str(error.orig)
    return None


@contextlib.contextmanager
def mysql_database(server):
    """A fresh database with a random name, dropped afterwards whatever happened; yields its URL."""
    name = f"gmall_test_{uuid.uuid4().hex[:12]}"
    with server.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield make_url(MYSQL_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE `{name}`")


class PrivateMariaDB:
    """A mariadbd of the test's own (its own datadir, a free port, root without a password),
    for the tests that stop, pause or kill the database: never the shared server. On a
    ``host`` of tests/support/hosts.py, it runs inside it on its address; ``options`` are more
    mariadbd arguments."""

    def __init__(self, directory, host=None, options=()):
        from .services import free_port  # services imports this module

        self.directory = Path(directory) / "mariadb"
        self.port = free_port()
        self.address = host.address if host else "127.0.0.1"
        self.launcher = host.launcher if host else []
        self.options = list(options)
        self.url = f"mysql+pymysql://root@{self.address}:{self.port}/gmall"
        self.process = None

    def start(self):
        server, installer = shutil.which("mariadbd"), shutil.which("mariadb-install-db")
        if server is None or installer is None:
            unavailable("mariadbd is not installed (Debian: apt-get install mariadb-server)")
        data = self.directory / "data"
        if not data.exists():
            subprocess.run(
                [
                    installer,
                    "--no-defaults",
                    f"--datadir={data}",
                    "--user=root",
                    "--skip-test-db",
                    "--auth-root-authentication-method=normal",
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
        self.process = subprocess.Popen(
            [
                *self.launcher,
                server,
                "--no-defaults",
                *self._remote_root(),
                *self.options,
                f"--datadir={data}",
                "--user=root",
                f"--port={self.port}",
                f"--bind-address={self.address}",
                f"--socket={self.directory / 'mariadb.sock'}",
                "--skip-log-bin",
                f"--pid-file={self.directory / 'mariadb.pid'}",
                "--innodb-buffer-pool-size=32M",
                f"--log-error={self.directory / 'error.log'}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        engine = create_engine(
            f"mysql+pymysql://root@{self.address}:{self.port}", isolation_level="AUTOCOMMIT"
        )
        deadline = time.monotonic() + 60
        while _unreachable(engine):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"private mariadbd did not start: {self.directory / 'error.log'}")
            time.sleep(0.2)
        with engine.connect() as connection:
            connection.exec_driver_sql("CREATE DATABASE IF NOT EXISTS gmall CHARACTER SET utf8mb4")
        engine.dispose()

    def _remote_root(self) -> list[str]:
        """On a host of its own, root may connect from the other hosts too (install-db made
        root@localhost only)."""
        if self.address == "127.0.0.1":
            return []
        grant = self.directory / "remote-root.sql"
        grant.write_text(
            "CREATE USER IF NOT EXISTS root@'%';\nGRANT ALL ON *.* TO root@'%' WITH GRANT OPTION;\n"
        )
        return [f"--init-file={grant}", "--skip-name-resolve"]

    def pause(self):
        processes.pause(self.process)

    def resume(self):
        processes.resume(self.process)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
