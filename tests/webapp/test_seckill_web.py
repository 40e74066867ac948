"""The flash sale through the shop's HTTP interface, on the embedded default (SQLite, the
in-process gate, worker and rate limits); tests/services/ runs it on Redis and MariaDB."""

import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from support.forms import logged_in
from support.seckill_web import BROWSER, FROM_THE_SHOP, JSON, SKU, lose, preheated
from support.shop import make_app, member_orders

from gmall_payment.adapters.sql.demo import SALE_UNITS
from gmall_payment.core.seckill import Sale


@pytest.fixture
def shop(tmp_path):
    app = make_app(
        tmp_path,
        SECKILL_TICK_SECONDS=0.05,
        SECKILL_PAY_WAIT_SECONDS=5,
        SECKILL_RATE_LIMIT_MEMBER="3/minute",
        SECKILL_RATE_LIMIT_IP="1000/minute",
    )
    yield app
    app.extensions["gmall"].bus.close()


def test_seed_demo_makes_an_open_sale_that_the_shop_preheats_itself(shop):
    sale = preheated(shop.test_client())
    assert (sale["open"], sale["units_left"], sale["price"], sale["starts_in"]) == (
        True,
        SALE_UNITS,
        "1999.00",
        0,
    )
    page = shop.test_client().get("/seckill", headers=BROWSER)
    assert page.status_code == 200 and f'data-sku="{SKU}"' in page.text and "立即抢购" in page.text


def test_a_click_answers_at_once_then_the_pay_step_waits_for_the_order_and_goes_to_pay(shop):
    demo = logged_in(shop)
    preheated(demo)

    first = demo.get(f"/seckill/{SKU}", headers=JSON)
    assert first.status_code == 200
    order_sn = first.json["order_sn"]
    assert first.json == {
        "outcome": "reserved",
        "message": f"秒杀成功,订单号:{order_sn}",
        "order_sn": order_sn,
        "pay_url": f"/seckill/pay?orderSn={order_sn}",
    }
    again = demo.get(f"/seckill/{SKU}", headers=JSON)
    assert (again.status_code, again.json["outcome"], again.json["order_sn"]) == (
        409,
        "already_bought",
        order_sn,
    )

    paying = demo.get(first.json["pay_url"])
    assert paying.status_code == 302 and paying.location == f"/pay.html?orderToken={order_sn}"
    assert demo.get(f"/seckill/orders/{order_sn}").json["state"] == "created"
    order = demo.get(f"/api/orders/{order_sn}").json
    assert (order["status"], order["pay_amount"], order["integration"]) == (
        "awaiting_payment",
        "1999.00",
        199,
    )
    assert [(i["sku_id"], i["quantity"]) for i in order["items"]] == [(SKU, 1)]
    assert order["stock_locks"] == [{"sku_id": SKU, "quantity": 1, "status": "locked"}]
    assert f'id="order-{order_sn}"' in demo.get("/orders").text  # "my orders" lists it like any other
    assert preheated(demo)["units_left"] == SALE_UNITS - 1


def test_a_browser_gets_pages_and_the_login_page_first(shop):
    assert shop.test_client().get(f"/seckill/{SKU}", headers=BROWSER).location.startswith("/login")
    anonymous = shop.test_client().get(f"/seckill/{SKU}", headers=JSON)
    assert (anonymous.status_code, anonymous.json["message"]) == (401, "请登录后再试!")

    demo = logged_in(shop)
    preheated(demo)
    page = demo.get(f"/seckill/{SKU}", headers=FROM_THE_SHOP)
    assert (
        page.status_code == 200 and "秒杀成功,订单号:" in page.text and "/seckill/pay?orderSn=" in page.text
    )


def test_sold_out_not_started_and_not_on_sale_are_told_apart(shop):
    with shop.app_context():
        now = datetime.now()
        seckill = shop.extensions["gmall"].seckill
        seckill.create_sale(Sale(1001, "one unit", Decimal("1.00"), 1, now, now + timedelta(hours=1)))
        seckill.create_sale(
            Sale(1002, "tomorrow", Decimal("1.00"), 5, now + timedelta(minutes=1), now + timedelta(hours=1))
        )
    demo, alice = logged_in(shop), logged_in(shop, "alice", "alice123")
    preheated(demo, 1001)
    preheated(demo, 1002)

    assert demo.get("/seckill/1001", headers=JSON).status_code == 200
    sold_out = alice.get("/seckill/1001", headers=JSON)
    assert (sold_out.status_code, sold_out.json["outcome"], sold_out.json["message"]) == (
        410,
        "sold_out",
        "秒杀结束!",
    )
    early = alice.get("/seckill/1002", headers=JSON)
    assert (early.status_code, early.json["outcome"], early.json["order_sn"]) == (403, "not_started", None)
    unknown = alice.get("/seckill/1003", headers=JSON)
    assert (unknown.status_code, unknown.json["outcome"]) == (404, "not_on_sale")


def test_over_the_member_limit_the_answer_is_429_with_retry_after_and_nothing_is_reserved(shop):
    demo = logged_in(shop)
    preheated(demo)
    answers = [demo.get(f"/seckill/{SKU}", headers=JSON) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 409, 409, 429]
    assert answers[3].json["outcome"] == "rate_limited" and 0 < int(answers[3].headers["Retry-After"]) <= 60
    assert (
        logged_in(shop, "alice", "alice123").get(f"/seckill/{SKU}", headers=JSON).status_code == 200
    )  # per member
    assert preheated(demo)["units_left"] == SALE_UNITS - 2


def test_over_the_ip_limit_every_member_is_turned_away(tmp_path):
    app = make_app(tmp_path, SECKILL_RATE_LIMIT_MEMBER="100/minute", SECKILL_RATE_LIMIT_IP="2/minute")
    try:
        demo, alice = logged_in(app), logged_in(app, "alice", "alice123")
        preheated(demo)
        codes = [client.get(f"/seckill/{SKU}", headers=JSON).status_code for client in (demo, alice, alice)]
        assert codes[2] == 429 and "Retry-After" in alice.get(f"/seckill/{SKU}", headers=JSON).headers
    finally:
        app.extensions["gmall"].bus.close()


def stalled_reservation(app, client) -> str:
    """A unit the member reserved whose order is never made (no order creator runs)."""
    app.extensions["gmall"].seckill.create_orders = lambda sku_id, consumer: 0
    preheated(client)
    return client.get(f"/seckill/{SKU}", headers=JSON).json["order_sn"]


def test_a_reservation_the_gate_lost_is_told_lost_on_the_status_and_the_pay_step(tmp_path):
    app = make_app(tmp_path, SECKILL_TICK_SECONDS=0.05, SECKILL_PAY_WAIT_SECONDS=0.2)
    try:
        demo = logged_in(app)
        reserved = stalled_reservation(app, demo)
        lose(app.extensions["gmall"].seckill.gate, SKU)  # Redis restarted empty
        preheated(demo)  # the tick loaded the sale again from the database

        assert demo.get(f"/seckill/orders/{reserved}", headers=JSON).json == {
            "order_sn": reserved,
            "state": "lost",
            "pay_url": None,
        }
        started = time.monotonic()
        page = demo.get(f"/seckill/pay?orderSn={reserved}", headers=BROWSER)
        assert page.status_code == 404 and time.monotonic() - started < 1  # told at once, no polling page
        assert "抢购记录可能已丢失" in page.text and "data-poll" not in page.text
        again = demo.get(f"/seckill/{SKU}", headers=JSON).json  # free to try again
        assert again["outcome"] == "reserved" and again["order_sn"] != reserved
    finally:
        app.extensions["gmall"].bus.close()


def test_the_pay_step_returns_within_its_bound_when_the_order_never_appears(tmp_path):
    app = make_app(tmp_path, SECKILL_PAY_WAIT_SECONDS=0.5)
    try:
        demo = logged_in(app)
        reserved = stalled_reservation(app, demo)
        started = time.monotonic()
        page = demo.get(f"/seckill/pay?orderSn={reserved}")
        elapsed = time.monotonic() - started

        assert page.status_code == 202 and 0.45 <= elapsed < 2
        assert 'data-state="pending"' in page.text and f"/seckill/orders/{reserved}" in page.text
        assert demo.get(f"/seckill/orders/{reserved}").json == {
            "order_sn": reserved,
            "state": "pending",
            "pay_url": None,
        }
    finally:
        app.extensions["gmall"].bus.close()


def test_the_pay_step_tells_at_once_a_number_that_is_not_the_members(tmp_path):
    app = make_app(tmp_path, SECKILL_PAY_WAIT_SECONDS=5)
    try:
        demo, alice = logged_in(app), logged_in(app, "alice", "alice123")
        theirs = stalled_reservation(app, alice)
        ordinary = member_orders(app, "alice")[0]  # an ordinary order, another member's
        for number in ("20241111200000000000123456", theirs, ordinary):
            started = time.monotonic()
            page = demo.get(f"/seckill/pay?orderSn={number}", headers=BROWSER)
            assert page.status_code == 404 and time.monotonic() - started < 1, number
            assert (
                f"没有找到您的秒杀订单 {number}" in page.text and 'id="error"' in page.text
            )  # the shop's page
        assert alice.get(f"/seckill/pay?orderSn={theirs}").status_code == 202  # the member's own still waits
    finally:
        app.extensions["gmall"].bus.close()


def test_another_members_order_is_lost_to_them_as_an_unknown_number(tmp_path):
    app = make_app(tmp_path, SECKILL_TICK_SECONDS=0.05, SECKILL_PAY_WAIT_SECONDS=0.2)
    try:
        demo, alice = logged_in(app), logged_in(app, "alice", "alice123")
        preheated(demo)
        order_sn = demo.get(f"/seckill/{SKU}", headers=JSON).json["order_sn"]
        assert demo.get(f"/seckill/pay?orderSn={order_sn}").status_code == 302

        assert alice.get(f"/seckill/orders/{order_sn}", headers=JSON).json["state"] == "lost"
        assert (
            alice.get(f"/seckill/pay?orderSn={order_sn}").status_code == 404
        )  # told at once, as an unknown one
        assert alice.get("/seckill/pay?orderSn=20241111200000000000123456").status_code == 404
        assert alice.get(f"/pay.html?orderToken={order_sn}").status_code == 404
    finally:
        app.extensions["gmall"].bus.close()


def test_waiting_for_orders_is_rate_limited_per_member_with_retry_after(tmp_path):
    app = make_app(tmp_path, SECKILL_PAY_WAIT_SECONDS=0.05, SECKILL_RATE_LIMIT_WAIT="3/minute")
    try:
        demo, alice = logged_in(app), logged_in(app, "alice", "alice123")
        reserved, unknown = stalled_reservation(app, demo), "20241111200000000000123456"
        answers = [
            demo.get(f"/seckill/pay?orderSn={reserved}"),
            demo.get(f"/seckill/orders/{reserved}", headers=JSON),
            demo.get(f"/seckill/pay?orderSn={reserved}"),
            demo.get(f"/seckill/orders/{reserved}", headers=JSON),
        ]

        assert [a.status_code for a in answers] == [
            202,
            200,
            202,
            429,
        ]  # the pay step and its status share the limit
        assert (
            answers[3].json["outcome"] == "rate_limited" and 1 <= int(answers[3].headers["Retry-After"]) <= 60
        )
        assert alice.get(f"/seckill/orders/{unknown}", headers=JSON).status_code == 200  # per member
    finally:
        app.extensions["gmall"].bus.close()


def test_a_rate_limit_that_does_not_parse_stops_the_shop_naming_its_setting(tmp_path):
    for key in ("SECKILL_RATE_LIMIT_MEMBER", "SECKILL_RATE_LIMIT_IP", "SECKILL_RATE_LIMIT_WAIT"):
        with pytest.raises(ValueError, match=key):
            make_app(tmp_path, **{key: "five a second"})
