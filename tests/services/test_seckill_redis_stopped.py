"""The flash sale on a Redis that stops answering (SIGSTOP, issue 13): the click, the status
and the pay step answer 503 with Retry-After within about a second, and the click's answer is
true: once Redis resumes, the member holds no unit and their next click reserves."""

import time

import pytest
import requests
from support.seckill_services import SECKILL, SKU, arrange, cookie

pytestmark = pytest.mark.services

TIMEOUT = 0.5  # SECKILL_REDIS_TIMEOUT_SECONDS


def get(shop, member, path):
    started = time.monotonic()
    response = requests.get(
        f"{shop.url}{path}",
        cookies={"session": cookie(shop, member)},
        headers={"Accept": "application/json"},
        allow_redirects=False,
        timeout=30,
    )
    return response, time.monotonic() - started


def test_a_stopped_redis_is_answered_503_at_once_and_a_click_so_answered_holds_no_unit(
    make_shop, private_redis
):
    shop = make_shop(redis_url=private_redis.url, **{**SECKILL, "SECKILL_REDIS_TIMEOUT_SECONDS": TIMEOUT})
    sale = arrange(shop, members=3, units=5)
    with shop.app.app_context():
        shop.services.seckill.preheat(shop.services.seckill.sales.get(sale.id))
    held, _ = get(shop, 1, f"/seckill/{SKU}")
    assert held.json()["outcome"] == "reserved"
    gate = shop.services.seckill.gate

    private_redis.pause()
    try:
        click, click_took = get(shop, 2, f"/seckill/{SKU}")
        status, status_took = get(shop, 1, f"/seckill/orders/{held.json()['order_sn']}")
        pay, pay_took = get(shop, 1, f"/seckill/pay?orderSn={held.json()['order_sn']}")
    finally:
        private_redis.resume()

    for response, took in ((click, click_took), (status, status_took), (pay, pay_took)):
        assert response.status_code == 503 and response.headers["Retry-After"] == "1", response.text
        assert took < 4 * TIMEOUT + 1, took  # a generous bound: about a second on a loaded machine
    assert click.json()["outcome"] == "unavailable"
    time.sleep(0.5)  # what the stopped Redis was sent has run now
    assert gate.held(SKU, 2) is None and gate.units_left(SKU) == 4  # the click answered 503 took nothing
    again, _ = get(shop, 2, f"/seckill/{SKU}")
    assert (again.status_code, again.json()["outcome"]) == (200, "reserved")  # never "already bought"
