"""The MariaDB server of GMALL_TEST_MYSQL_URL, and fresh databases on it, for the tests that need one.

Unreachable, it skips those tests, or fails them when GMALL_REQUIRE_SERVICES=1 asks for every
service (CI), rather than passing with less tested.
"""

import contextlib
import os
import uuid

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

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
