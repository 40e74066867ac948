"""`gmall-payment worker`, `dramatiq gmall_payment.webapp.worker` and `gmall-payment replay`."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, update

from gmall_payment.adapters.sql.models import FulfilmentTrace, Member, Order, db

BIN = Path(sys.executable).parent


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def environment(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GMALL_")}
    env.update(
        GMALL_INSTANCE_PATH=str(tmp_path / "instance"),
        GMALL_DATABASE_URL=f"sqlite:///{tmp_path / 'shop.db'}",
        GMALL_REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0",
    )
    return env


@pytest.mark.parametrize(
    "command",
    [
        [str(BIN / "gmall-payment"), "worker", "--processes", "1"],
        [str(BIN / "dramatiq"), "gmall_payment.webapp.worker", "--processes", "1"],
    ],
)
def test_an_unreachable_redis_exits_with_3_and_says_so(environment, command):
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    port = environment["GMALL_REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
    assert done.returncode == 3, done.stderr[-2000:]
    assert f"Redis at 127.0.0.1:{port} (GMALL_REDIS_URL) is unreachable" in done.stderr
    assert "Start Redis there or point GMALL_REDIS_URL at a running one" in done.stderr


def test_the_worker_needs_a_redis_url(environment):
    del environment["GMALL_REDIS_URL"]
    done = subprocess.run(
        [str(BIN / "gmall-payment"), "worker"], env=environment, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "GMALL_REDIS_URL is not set" in done.stderr


def test_replay_runs_a_step_again_and_says_what_it_did(app, runner):
    with app.app_context():
        order_sn = db.session.scalar(select(Order.order_sn).where(Order.status == 0).order_by(Order.id))

    early = runner.invoke(args=["replay", "award_points", order_sn])
    assert early.exit_code == 1
    assert (
        f"award_points({order_sn}) failed: OrderNotPaidYet: order {order_sn} is not paid yet" in early.output
    )

    with app.app_context():
        db.session.execute(update(Order).where(Order.order_sn == order_sn).values(status=1))
        db.session.commit()
        before = db.session.scalar(select(Member.integration).where(Member.id == 1))
    first = runner.invoke(args=["replay", "award_points", order_sn])
    again = runner.invoke(args=["replay", "award_points", order_sn])

    assert (first.exit_code, again.exit_code) == (0, 0)
    assert first.output.strip() == f"award_points({order_sn}): done"
    assert again.output.strip() == f"award_points({order_sn}): skipped, it was already in effect"
    with app.app_context():
        points = db.session.scalar(select(Member.integration).where(Member.id == 1)) - before
        order = db.session.scalar(select(Order).where(Order.order_sn == order_sn))
        outcomes = db.session.scalars(
            select(FulfilmentTrace.outcome)
            .where(FulfilmentTrace.order_sn == order_sn)
            .order_by(FulfilmentTrace.id)
        ).all()
    assert points == order.integration
    assert outcomes == ["failed", "done", "skipped"]
    assert runner.invoke(args=["replay", "ship_it", order_sn]).exit_code == 2
