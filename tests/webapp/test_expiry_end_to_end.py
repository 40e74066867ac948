"""Order expiry over real HTTP: the order closes, its stock is released, its Alipay trade closed
at the offline gateway (by its time_expire, the order's own expiry), and the shopper can no
longer pay it."""

import time
from datetime import datetime

import pytest
from sqlalchemy import select, update
from support.alipay import pay_on_cashier, start_on_cashier
from support.forms import logged_in
from support.shop import (
    browser_login,
    make_app,
    member_orders,
    notify_log,
    open_order,
    served_shop,
    shop_state,
    wait_for,
)

from gmall_payment.adapters.sql.models import Order, PaymentInfo, StockLock, db

JSON = {"Accept": "application/json"}


@pytest.fixture
def live(tmp_path):
    with served_shop(tmp_path, ORDER_PAY_TIMEOUT_SECONDS=2, ALIPAY_SANDBOX_NOTIFY_SPEEDUP=24000) as shop:
        yield shop


def test_an_expired_order_is_closed_with_its_alipay_trade(live):
    app, base_url = live
    before = open_order(app)
    sn = before["order_sn"]
    browser = browser_login(base_url)
    with app.app_context():  # placed now: its 2 s (and its time_expire at the gateway) start now
        db.session.execute(update(Order).where(Order.order_sn == sn).values(create_time=datetime.now()))
        db.session.commit()
    placed = time.monotonic()
    browser, cashier = start_on_cashier(
        app, base_url, sn, browser
    )  # the trade is open at the gateway, unpaid
    gateway = app.wsgi_app.mounts["/alipay-sandbox"]
    assert gateway.ledger.get(sn).trade_status == "WAIT_BUYER_PAY"
    time.sleep(max(0.0, placed + 2.1 - time.monotonic()))
    runner = app.test_cli_runner()

    assert sn in runner.invoke(args=["expire", "--dry-run"]).output
    expired = runner.invoke(args=["expire"])

    assert expired.exit_code == 0, expired.output
    assert f"{sn}: closed" in expired.output
    assert (
        set(member_orders(app)).isdisjoint({sn}) and len(member_orders(app)) == 0
    )  # the demo's three expired
    assert gateway.notifier.join(10)
    with app.app_context():
        assert db.session.scalar(select(Order.status).where(Order.order_sn == sn)) == 4
        assert set(db.session.scalars(select(StockLock.status).where(StockLock.order_sn == sn))) == {2}
        payment = db.session.scalar(select(PaymentInfo).where(PaymentInfo.order_sn == sn))
        assert payment.payment_status == 2
    assert shop_state(app, before)[1] == (before["sku"][0], 0, before["sku"][2])  # every demo order expired
    assert gateway.ledger.get(sn).trade_status == "TRADE_CLOSED"  # its time_expire came
    log = [(e.source, e.outcome) for e in notify_log(app) if e.out_trade_no == sn]
    # The last question before closing: Alipay closed the trade itself, at the order's expiry,
    # so there is no trade left open to close with alipay.trade.close (tests/alipay cover that).
    assert log == [("query", "closed")]
    refused = pay_on_cashier(cashier, session=browser)
    assert refused.status_code == 409  # a closed trade cannot be paid
    trace = browser.get(f"{base_url}/api/orders/{sn}/trace").json()
    assert {(s["step"], s["state"]) for s in trace["fulfilment"]} >= {
        ("close_order", "done"),
        ("close_trades", "skipped"),
    }
    assert runner.invoke(args=["expire"]).output.strip().startswith("0 order(s)")


def test_a_flash_sale_order_closed_by_the_order_timeout_gives_its_unit_back(tmp_path):
    """The shop's order timeout, not the flash sale's own (much later here), closes a seckill
    order: through the one close_order, whose order.closed gives the unit back."""
    app = make_app(
        tmp_path, ORDER_PAY_TIMEOUT_SECONDS=1, SECKILL_PAY_WITHIN_SECONDS=3600, SECKILL_TICK_SECONDS=0.05
    )
    try:
        demo = logged_in(app)
        sale = wait_for(
            lambda: next(
                (s for s in demo.get("/seckill", headers=JSON).json["sales"] if s["units_left"] is not None),
                None,
            )
        )
        units = sale["units_left"]
        click = demo.get(f"/seckill/{sale['sku_id']}", headers=JSON).json
        order_sn = click["order_sn"]
        wait_for(lambda: demo.get(f"/seckill/orders/{order_sn}").json["state"] == "created")
        assert demo.get("/seckill", headers=JSON).json["sales"][0]["units_left"] == units - 1
        time.sleep(1.1)

        expired = app.test_cli_runner().invoke(args=["expire"])

        assert f"{order_sn}: closed" in expired.output, expired.output
        assert demo.get(f"/seckill/orders/{order_sn}").json["state"] == "closed"
        assert (
            next(
                s for s in demo.get("/seckill", headers=JSON).json["sales"] if s["sku_id"] == sale["sku_id"]
            )["units_left"]
            == units
        )  # the unit came back
        steps = {
            (s["step"], s["state"]) for s in demo.get(f"/api/orders/{order_sn}/trace").json["fulfilment"]
        }
        assert {("close_order", "done"), ("close_trades", "skipped")} <= steps
        # The step returns the unit, unless the tick's sweep (every 0.05 s here) got there first
        # between the step's two transactions: then the step finds it returned. Once either way.
        assert ("give_back_seckill_unit", "done") in steps or ("give_back_seckill_unit", "skipped") in steps
        again = demo.get(f"/seckill/{sale['sku_id']}", headers=JSON)
        assert again.json["outcome"] == "reserved"  # the member may buy again
    finally:
        app.extensions["gmall"].bus.close()
