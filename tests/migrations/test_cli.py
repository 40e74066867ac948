"""``gmall-payment init-db`` and Flask-Migrate's ``gmall-payment db ...`` on the shop's app."""

import logging

import pytest
from sqlalchemy import func, select, text
from support.shop import copy_test_keys

from gmall_payment.adapters.sql.models import Member, db
from gmall_payment.webapp import create_app


@pytest.fixture
def logging_restored():
    """``gmall-payment db ...`` configures logging from alembic.ini, as a command should; here it
    runs inside the test process, whose logging is put back afterwards."""
    loggers = [logging.getLogger(name) for name in ("", "alembic", "sqlalchemy.engine", "flask_migrate")]
    saved = [(logger, logger.level, list(logger.handlers), logger.propagate) for logger in loggers]
    yield
    for logger, level, handlers, propagate in saved:
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate


def shop(tmp_path):
    copy_test_keys(tmp_path / "instance")
    return create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.db'}",
            "SECRET_KEY": "test-only",
        }
    )


def test_init_db_on_an_empty_database_runs_every_revision_then_seed_demo_works(tmp_path, logging_restored):
    app = shop(tmp_path)
    runner = app.test_cli_runner()

    result = runner.invoke(args=["init-db"])

    assert result.exit_code == 0, result.output
    assert ": empty\n  upgraded to 0001: Baseline" in result.output
    assert "upgraded to 0010" in result.output and "database ready" in result.output
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    assert runner.invoke(args=["db", "current"]).stdout == "0010 (head)\n"
    again = runner.invoke(args=["init-db"])
    assert again.exit_code == 0 and ": at revision 0010\ndatabase ready" in again.output


def test_init_db_stamps_a_database_an_older_init_db_made(tmp_path):
    app = shop(tmp_path)
    with app.app_context():
        db.create_all()
    runner = app.test_cli_runner()
    runner.invoke(args=["seed-demo"])

    result = runner.invoke(args=["init-db"])

    assert result.exit_code == 0, result.output
    assert ": unversioned, the tables of revision 0010\ndatabase ready" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Member)) == 2


def test_init_db_refuses_a_database_it_cannot_place_and_changes_nothing(tmp_path):
    app = shop(tmp_path)
    with app.app_context():
        db.create_all()
        db.session.execute(text("ALTER TABLE ums_member ADD COLUMN nickname2 VARCHAR(64)"))
        db.session.commit()

    result = app.test_cli_runner().invoke(args=["init-db"])

    assert result.exit_code == 1
    assert "neither the models' tables nor the baseline's (0001); nothing was changed" in result.output
    assert "nickname2" in result.output
    with app.app_context():
        assert "alembic_version" not in db.inspect(db.engine).get_table_names()


def test_db_history_lists_the_revisions(tmp_path, logging_restored):
    result = shop(tmp_path).test_cli_runner().invoke(args=["db", "history"])

    assert result.exit_code == 0
    assert [line.split(",")[0] for line in result.stdout.splitlines()] == [
        "0009 -> 0010 (head)",
        "0008 -> 0009",
        "0007 -> 0008",
        "0006 -> 0007",
        "0005 -> 0006",
        "0004 -> 0005",
        "0003 -> 0004",
        "0002 -> 0003",
        "0001 -> 0002",
        "<base> -> 0001",
    ]
