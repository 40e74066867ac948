"""A lost notify over real HTTP: mockpay took the money, only asking it tells; reconciliation asks."""

import time

import pytest
from support.shop import (
    browser_login,
    notify_log,
    open_order,
    pay_on_cashier,
    served_shop,
    wait_until_fulfilled,
)


@pytest.fixture
def served(tmp_path, request):
    """The shop on a real server; ``request.param``: settings for it."""
    with served_shop(tmp_path, RECONCILE_GRACE_SECONDS=0, **getattr(request, "param", {})) as shop:
        yield shop


def payment_row(browser, base_url, order_sn):
    [payment] = browser.get(f"{base_url}/api/orders/{order_sn}").json()["payments"]
    return payment


def test_the_reconcile_command_finds_a_lost_notify_paid(served):
    app, base_url = served
    order = open_order(app)
    browser = browser_login(base_url)
    pay_on_cashier(browser, base_url, order["order_sn"], scenario="lost")
    assert payment_row(browser, base_url, order["order_sn"])["status"] == "unpaid"
    runner = app.test_cli_runner()

    dry = runner.invoke(args=["reconcile", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"mockpay {order['order_sn']} (order {order['order_sn']}): answers paid" in dry.output
    assert payment_row(browser, base_url, order["order_sn"])["status"] == "unpaid"
    assert notify_log(app) == []

    done = runner.invoke(args=["reconcile"])

    assert done.exit_code == 0, done.output
    assert f"mockpay {order['order_sn']} (order {order['order_sn']}): paid" in done.output
    view = wait_until_fulfilled(browser, base_url, order["order_sn"])
    assert view["status"] == "awaiting_shipment" and view["payments"][0]["status"] == "paid"
    assert [(e.source, e.outcome, e.accepted) for e in notify_log(app)] == [("query", "paid", True)]
    assert runner.invoke(args=["reconcile"]).output.strip() == "0 payment(s) asked about; done"


@pytest.mark.parametrize("served", [{"RECONCILE_SECONDS": 0.2}], indirect=True)
def test_the_worker_reconciles_by_itself(served):
    app, base_url = served
    order = open_order(app)
    browser = browser_login(base_url)
    started = time.monotonic()

    pay_on_cashier(browser, base_url, order["order_sn"], scenario="lost")

    view = wait_until_fulfilled(browser, base_url, order["order_sn"], timeout=15)
    assert view["payments"][0]["status"] == "paid"
    assert time.monotonic() - started < 15
    # A pass may come before the shopper has paid ("not_started", as the gateway answers then).
    answers = [(e.source, e.outcome) for e in notify_log(app) if e.outcome not in ("recorded", "not_started")]
    assert answers == [("query", "paid")]
