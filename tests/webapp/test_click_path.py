"""The click's fast path (webapp/click_path.py) answers exactly as the Flask view does, and
leaves to Flask what it does not serve."""

import logging
import time

import pytest
from itsdangerous import URLSafeTimedSerializer
from support.forms import log_in, logged_in
from support.seckill_web import JSON, SKU, preheated
from support.shop import csrf_token, make_app

from gmall_payment.adapters.sql.demo import SALE_UNITS
from gmall_payment.webapp.click_path import prefers_json
from gmall_payment.webapp.seckill import NOT_SAME_ORIGIN

#: Prefers JSON, but names a text type: weighed by Flask's view, which answers JSON too.
JSON_VIA_FLASK = {"Accept": "application/json, text/plain;q=0.5"}
#: A SKU with no sale: a click there takes nothing.
NOT_ON_SALE = 9999


@pytest.fixture
def shop(tmp_path):
    app = make_app(
        tmp_path,
        SECKILL_TICK_SECONDS=0.05,
        SECKILL_RATE_LIMIT_MEMBER="2/minute",
        SECKILL_RATE_LIMIT_IP="1000/minute",
    )
    yield app
    app.extensions["gmall"].bus.close()


def served_by_flask(app, monkeypatch):
    """Record each request Flask's own machinery handles."""
    seen = []
    original = app.full_dispatch_request
    monkeypatch.setattr(app, "full_dispatch_request", lambda: seen.append(1) or original())
    return seen


def test_the_fast_path_answers_as_the_view_does_without_flask(shop, monkeypatch):
    demo, alice = logged_in(shop), logged_in(shop, "alice", "alice123")
    preheated(demo)
    flask_calls = served_by_flask(shop, monkeypatch)

    fast = [demo.get(f"/seckill/{SKU}", headers=JSON) for _ in range(3)]
    assert flask_calls == []
    via_flask = [alice.get(f"/seckill/{SKU}", headers=JSON_VIA_FLASK) for _ in range(3)]
    assert len(flask_calls) == 3

    for answers in (fast, via_flask):
        assert [a.status_code for a in answers] == [200, 409, 429]
        sn = answers[0].json["order_sn"]
        assert answers[1].json == {
            "outcome": "already_bought",
            "message": f"您已抢到一件,每人限购一件,订单号:{sn}",
            "order_sn": sn,
            "pay_url": f"/seckill/pay?orderSn={sn}",
        }
        assert answers[2].json == {"outcome": "rate_limited", "message": "请求过于频繁,请稍后再试"}
        assert 1 <= int(answers[2].headers["Retry-After"]) <= 60
        assert all(
            a.headers["Content-Type"] == "application/json" and "Cookie" in a.headers["Vary"] for a in answers
        )
    assert preheated(demo)["units_left"] == SALE_UNITS - 2


@pytest.mark.parametrize("site", ["cross-site", "same-site", "none"])
def test_a_click_another_page_makes_is_refused_alike_by_both(shop, monkeypatch, site):
    demo = logged_in(shop)
    preheated(demo)
    flask_calls = served_by_flask(shop, monkeypatch)

    fast = demo.get(f"/seckill/{SKU}", headers={**JSON, "Sec-Fetch-Site": site})
    assert flask_calls == []
    via_flask = demo.get(f"/seckill/{SKU}", headers={**JSON_VIA_FLASK, "Sec-Fetch-Site": site})
    assert len(flask_calls) == 1

    for answer in (fast, via_flask):
        assert (answer.status_code, answer.json) == (403, NOT_SAME_ORIGIN)
        assert answer.headers["Content-Type"] == "application/json" and "Cookie" in answer.headers["Vary"]
    assert preheated(demo)["units_left"] == SALE_UNITS


def test_an_ended_session_is_a_stranger_to_both(shop, monkeypatch):
    demo = logged_in(shop)
    preheated(demo)
    copy = shop.test_client()
    copy.set_cookie("session", demo.get_cookie("session").value)
    demo.post("/logout", data={"csrf_token": csrf_token(demo.get("/orders").text)})

    answers = [copy.get(f"/seckill/{SKU}", headers=headers) for headers in (JSON, JSON_VIA_FLASK)]
    assert [(a.status_code, a.json["outcome"]) for a in answers] == [(401, "not_logged_in")] * 2
    assert preheated(demo)["units_left"] == SALE_UNITS


def test_a_cookie_is_verified_once_and_still_ends_with_its_session(shop, monkeypatch):
    demo = logged_in(shop)
    preheated(demo)
    verified = []
    loads = URLSafeTimedSerializer.loads
    monkeypatch.setattr(
        URLSafeTimedSerializer, "loads", lambda self, *a, **kw: verified.append(1) or loads(self, *a, **kw)
    )
    copy = shop.test_client()
    copy.set_cookie("session", demo.get_cookie("session").value)

    assert [copy.get(f"/seckill/{NOT_ON_SALE}", headers=JSON).status_code for _ in range(2)] == [404] * 2
    assert verified == [1]  # the signature checked at the first click only
    demo.post("/logout", data={"csrf_token": csrf_token(demo.get("/orders").text)})
    answer = copy.get(f"/seckill/{SKU}", headers=JSON)
    assert (answer.status_code, answer.json["outcome"]) == (401, "not_logged_in")  # the generation is read
    assert preheated(demo)["units_left"] == SALE_UNITS


def test_strangers_browsers_and_other_methods_go_on_to_flask(shop, monkeypatch):
    preheated(shop.test_client())
    flask_calls = served_by_flask(shop, monkeypatch)

    stranger = shop.test_client().get(f"/seckill/{SKU}", headers=JSON)
    browser = logged_in(shop).get(f"/seckill/{SKU}", headers={"Accept": "text/html"})
    post = logged_in(shop).post(f"/seckill/{SKU}", headers=JSON)
    leading_zero = logged_in(shop).get(f"/seckill/0{SKU}", headers=JSON)

    assert (stranger.status_code, stranger.json["outcome"]) == (401, "not_logged_in")
    assert browser.status_code in (200, 409) and "<html" in browser.text
    assert post.status_code in (400, 405)
    assert leading_zero.status_code in (200, 404, 409)  # as Flask's converter decides
    assert len(flask_calls) >= 4


def test_a_mounted_shop_sends_to_its_own_pay_step(shop):
    demo = logged_in(shop)
    preheated(demo)
    answer = demo.get(f"/seckill/{SKU}", headers=JSON, environ_overrides={"SCRIPT_NAME": "/mall"})
    assert answer.json["pay_url"] == f"/mall/seckill/pay?orderSn={answer.json['order_sn']}"


def test_a_failing_click_is_logged_and_answered_500_in_json(shop, monkeypatch, caplog):
    demo = logged_in(shop)
    preheated(demo)

    def broken(*args):
        raise ConnectionError("redis is gone")

    monkeypatch.setattr(shop.extensions["gmall"].seckill, "click", broken)
    with caplog.at_level(logging.ERROR):
        answer = demo.get(f"/seckill/{SKU}", headers=JSON)
    assert answer.status_code == 500 and answer.json["error"] == "internal_server_error"
    assert "redis is gone" in caplog.text and f"click on {SKU}" in caplog.text


@pytest.mark.parametrize(
    ("accept", "fast"),
    [
        ("application/json", True),
        ("*/*", True),
        ("", True),
        ("text/html,application/xhtml+xml,*/*;q=0.8", False),
        ("application/json, text/*;q=0.1", False),
    ],
)
def test_only_clients_sure_to_get_json_take_the_fast_path(accept, fast):
    assert prefers_json(accept) is fast


def test_a_forged_session_is_a_stranger_and_takes_nothing(shop):
    demo = logged_in(shop)
    preheated(demo)
    genuine = demo.get_cookie("session").value
    forged = shop.test_client()
    forged.set_cookie("session", genuine[:-2] + ("AA" if not genuine.endswith("AA") else "BB"))

    answer = forged.get(f"/seckill/{SKU}", headers=JSON)
    assert (answer.status_code, answer.json["outcome"]) == (401, "not_logged_in")
    assert preheated(demo)["units_left"] == SALE_UNITS


def test_an_expired_session_is_a_stranger(tmp_path):
    app = make_app(tmp_path, PERMANENT_SESSION_LIFETIME=2)
    try:
        demo = logged_in(app)
        preheated(demo)
        assert demo.get(f"/seckill/{NOT_ON_SALE}", headers=JSON).status_code == 404  # verified, remembered
        time.sleep(3.1)
        assert demo.get(f"/seckill/{SKU}", headers=JSON).status_code == 401
    finally:
        app.extensions["gmall"].bus.close()


def test_the_session_cookie_stays_on_this_site(shop):
    client = shop.test_client()
    answer = log_in(client)
    assert "SameSite=Lax" in answer.headers["Set-Cookie"] and "HttpOnly" in answer.headers["Set-Cookie"]
