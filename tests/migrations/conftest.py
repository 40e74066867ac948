"""Databases for the migration tests: a SQLite file, and a fresh MariaDB database when
``GMALL_TEST_MYSQL_URL`` names a server (as in ``tests/contract``), each on an engine prepared
as the shop prepares its own."""

import pytest
from contract.conftest import pytest_collection_modifyitems  # noqa: F401  deselects MariaDB without a URL
from sqlalchemy import create_engine, event
from support.mariadb import mysql_database, mysql_server  # noqa: F401 (a fixture)

from gmall_payment.adapters.sql.engine import engine_options, prepare_engine


def _engine(url):
    engine = create_engine(url, **engine_options(url))
    prepare_engine(engine)
    return engine


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def engine(request, tmp_path):
    if request.param == "sqlite":
        engine = _engine(f"sqlite:///{tmp_path / 'shop.db'}")
        yield engine
        engine.dispose()
    else:
        with mysql_database(request.getfixturevalue("mysql_server")) as url:
            engine = _engine(url)
            yield engine
            engine.dispose()


@pytest.fixture
def statements(engine):
    """Every SQL statement the engine sends from now on."""
    sent = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, statement, *_: sent.append(statement))
    return sent
