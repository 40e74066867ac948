"""One routing table: each event and each step is named once, in ``core.events``, and
everything that routes (the relay, the bus, the actors, the replay command) reads that table."""

import re
from pathlib import Path

from gmall_payment.core import events
from gmall_payment.core.events import ALL_STEPS, STEPS_BY_EVENT
from gmall_payment.core.outbox import OutboxRelay

PACKAGE = Path(events.__file__).parents[1]
#: The package's own rooms (not its tests, docs or benchmarks, which may spell the names).
ROOMS = ("core", "ports", "adapters", "plugins", "seckill", "webapp")
EVENT_NAMES = (
    events.PAYMENT_SUCCEEDED,
    events.ORDER_PAID,
    events.ORDER_CLOSED,
    events.REFUND_DUE,
    events.ORDER_REFUNDED,
)


def sources():
    for room in ROOMS:
        for path in sorted((PACKAGE / room).rglob("*")):
            if path.suffix in (".py", ".html", ".js") and "__pycache__" not in path.parts:
                yield path


def spelled(name: str, text: str) -> bool:
    """Whether ``text`` holds ``name`` as a string literal (in quotes, not in a docstring's ``name``)."""
    return re.search(rf"""["']{re.escape(name)}["']""", text) is not None


def test_the_table_routes_every_event_to_steps_each_named_once():
    assert set(STEPS_BY_EVENT) == set(EVENT_NAMES)
    assert all(STEPS_BY_EVENT.values())
    assert len(set(ALL_STEPS)) == len(ALL_STEPS) == sum(len(steps) for steps in STEPS_BY_EVENT.values())
    # The actors' names: messages in flight on Redis carry them, so a rename is a migration.
    assert ALL_STEPS == (
        "mark_order_paid",
        "deduct_stock",
        "award_points",
        "auto_refund",
        "revoke_points",
        "close_trades",
        "give_back_seckill_unit",
    )


def test_step_and_event_names_are_spelled_only_in_core_events():
    home = PACKAGE / "core" / "events.py"
    assert all(spelled(name, home.read_text(encoding="utf-8")) for name in (*ALL_STEPS, *EVENT_NAMES))
    elsewhere = {
        (str(path.relative_to(PACKAGE)), name)
        for path in sources()
        if path != home
        for name in (*ALL_STEPS, *EVENT_NAMES)
        if spelled(name, path.read_text(encoding="utf-8"))
    }
    assert elsewhere == set(), "name them through core.events, whose STEPS_BY_EVENT is the one routing table"


def test_the_check_would_see_a_step_spelled_out():
    assert spelled("award_points", 'uow.trace.record(order_sn, "award_points", DONE)')
    assert spelled("award_points", "steps = {'award_points': run}")
    assert not spelled("award_points", '"""The ``award_points`` step."""')
    assert not spelled("order.paid", '"""Writes ``order.paid``."""')


def test_the_relay_routes_by_the_table():
    assert OutboxRelay(lambda: None, None).routes is STEPS_BY_EVENT
