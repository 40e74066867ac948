"""``gmall-payment status``: the embedded default's answer, and the outbox's backlog."""

import json
from datetime import datetime

from gmall_payment.adapters.sql.models import OutboxEvent, db


def test_the_embedded_default_says_its_worker_is_in_process_and_counts_the_unsent_events(app, runner):
    empty = runner.invoke(args=["status", "--json"])
    assert empty.exit_code == 0, empty.output
    assert json.loads(empty.output)["outbox"] == {"unsent": 0, "oldest_unsent": None}
    written = datetime(2026, 12, 1, 8, 0, 0)
    with app.app_context():
        db.session.add_all(
            [
                OutboxEvent(
                    name="payment.succeeded",
                    order_sn=f"S{n}",
                    payload="{}",
                    create_time=written.replace(minute=n),
                )
                for n in (5, 1)
            ]
        )
        db.session.add(
            OutboxEvent(
                name="order.paid", order_sn="S9", payload="{}", create_time=written, sent_time=written
            )
        )
        db.session.commit()
    result = runner.invoke(args=["status"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "workers: in-process (the embedded default: the worker runs inside the shop)",
        "outbox: 2 unsent, oldest written 2026-12-01T08:01:00",
    ]
