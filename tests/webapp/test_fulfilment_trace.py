"""Operators and shoppers see, per order, which fulfilment steps ran, when, and what is stuck."""

import pytest
from sqlalchemy import delete, select
from support.forms import logged_in
from support.shop import make_app, notify_params

from gmall_payment.adapters.sql.models import Member, Order, WareSku, db


@pytest.fixture
def shop(tmp_path):
    app = make_app(tmp_path, STEP_MAX_RETRIES=1, STEP_MIN_BACKOFF_SECONDS=0.01, STEP_MAX_BACKOFF_SECONDS=0.02)
    yield app
    app.extensions["gmall"].bus.close()


def pay(app, username="demo"):
    """Start and notify the payment of the member's first open order; return its order_sn."""
    services = app.extensions["gmall"]
    with app.app_context():
        member = db.session.scalar(select(Member).where(Member.username == username))
        order = db.session.scalar(select(Order).where(Order.member_id == member.id, Order.status == 0))
        payment = services.payments.start(order.order_sn, "mockpay")
        sku_id = order.items[0].sku_id
    key = services.providers.get("mockpay").config.private_key
    assert app.test_client().post("/notify/mockpay", data=notify_params(payment, key)).text == "success"
    services.bus.join()
    return order.order_sn, sku_id


def test_the_trace_of_a_fulfilled_order(shop):
    order_sn, _ = pay(shop)
    trace = logged_in(shop).get(f"/api/orders/{order_sn}/trace").json

    assert (
        trace["order_sn"] == order_sn and trace["status"] == "awaiting_shipment" and trace["stuck"] is False
    )
    assert [(s["step"], s["state"]) for s in trace["fulfilment"]] == [
        ("mark_order_paid", "done"),
        ("deduct_stock", "done"),
        ("award_points", "done"),
    ]
    assert all(s["at"] for s in trace["fulfilment"])
    assert [e["outcome"] for e in trace["trace"] if e["outcome"] == "done"] == ["done"] * 3
    assert [e["name"] for e in trace["events"]] == ["payment.succeeded", "order.paid"]
    assert all(e["sent"] for e in trace["events"])

    page = logged_in(shop).get("/orders").text
    line = page[page.index(f'id="trace-{order_sn}"') :]
    line = line[: line.index("</ul>")]
    for step, name in (
        ("mark_order_paid", "确认付款"),
        ("deduct_stock", "扣减库存"),
        ("award_points", "发放积分"),
    ):
        assert f'data-step="{step}" data-state="done">{name} · 完成' in line
    assert "stuck" not in line and "dead" not in line


def test_a_dead_lettered_step_shows_the_order_stuck(shop, caplog):
    with shop.app_context():  # the SKU row vanishes: deducting its stock fails every time
        order = db.session.scalar(
            select(Order).where(Order.status == 0, Order.member_id == 1).order_by(Order.id)
        )
        db.session.execute(delete(WareSku).where(WareSku.sku_id == order.items[0].sku_id))
        db.session.commit()
    order_sn, _ = pay(shop)

    trace = logged_in(shop).get(f"/api/orders/{order_sn}/trace").json
    states = {s["step"]: s for s in trace["fulfilment"]}
    assert trace["stuck"] is True
    assert (states["mark_order_paid"]["state"], states["award_points"]["state"]) == ("done", "done")
    assert states["deduct_stock"]["state"] == "dead"
    assert states["deduct_stock"]["detail"].startswith("dead-lettered after 2 attempts: LookupError")
    assert [e["outcome"] for e in trace["trace"] if e["step"] == "deduct_stock"] == [
        "failed",
        "failed",
        "dead",
    ]
    assert f"DEAD-LETTERED deduct_stock(order_sn={order_sn}) after 2 attempts" in caplog.text

    page = logged_in(shop).get("/orders").text
    assert f'class="trace stuck" id="trace-{order_sn}"' in page
    assert f"gmall-payment replay STEP {order_sn}" in page
    assert logged_in(shop).get(f"/api/orders/{order_sn}").json["stuck"] is True


def test_the_trace_is_for_the_owner_only(shop):
    order_sn, _ = pay(shop, "alice")
    assert logged_in(shop).get(f"/api/orders/{order_sn}/trace").status_code == 404
    assert shop.test_client().get(f"/api/orders/{order_sn}/trace").status_code in (302, 401)
    assert logged_in(shop, "alice", "alice123").get(f"/api/orders/{order_sn}/trace").status_code == 200
