"""Finding 6 in a real browser: a page of another origin cannot make a signed-in member's
Chromium reserve a flash-sale unit — not with a link, a script's navigation, an image or a
fetch — whether it is another site (http://localhost:<port> beside the shop on 127.0.0.1,
where SameSite=Lax still sends the cookie with top-level navigations) or another origin of
the same site (127.0.0.1 on another port: every request carries the cookie). The shop's own
sale page still buys, and so does the button of the page a refused click gets."""

import re
import time

import pytest
import requests
from sqlalchemy import func, select
from support.browser import log_in
from support.servers import serving
from werkzeug.wrappers import Request, Response

from gmall_payment.adapters.sql.demo import SALE_UNITS
from gmall_payment.adapters.sql.models import db
from gmall_payment.adapters.sql.seckill import SeckillOrderRow

SKU = 1004  # the demo's flash sale
#: What each page of the other origin does with the click's address.
ATTACKS = {
    "link": '<a id="go" href="{click}">free gift</a>',
    "navigation": '<script>location.href = "{click}";</script>',
    "image": '<img src="{click}" onload="document.title=\'done\'" onerror="document.title=\'done\'">',
    "fetch": '<script>fetch("{click}", {{credentials: "include", mode: "no-cors", headers: {{Accept: "application/json"}}}})'
    '.finally(() => document.title = "done");</script>',
}


def other_origin(click_url):
    """A site of its own serving each attack page at /<attack>."""

    def app(environ, start_response):
        attack = Request(environ).path.strip("/")
        html = f"<!doctype html><title>waiting</title>{ATTACKS[attack].format(click=click_url)}"
        return Response(html, mimetype="text/html")(environ, start_response)

    return app


def reserved(app, base_url) -> tuple[int, int]:
    """(units taken from the gate, flash-sale orders made)."""
    sale = next(
        s
        for s in requests.get(
            f"{base_url}/seckill", headers={"Accept": "application/json"}, timeout=10
        ).json()["sales"]
        if s["sku_id"] == SKU
    )
    with app.app_context():
        return SALE_UNITS - sale["units_left"], db.session.scalar(
            select(func.count()).select_from(SeckillOrderRow)
        )


def preheated(base_url):
    requests.get(f"{base_url}/seckill", timeout=10)  # the first request starts the embedded worker
    for _ in range(100):
        sales = requests.get(
            f"{base_url}/seckill", headers={"Accept": "application/json"}, timeout=10
        ).json()["sales"]
        if next(s for s in sales if s["sku_id"] == SKU)["units_left"] is not None:
            return
        time.sleep(0.05)
    raise AssertionError("the sale was not preheated")


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"], ids=["cross-site", "same-site-other-port"])
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_page_of_another_origin_reserves_nothing(live_shop, page, host, attack):
    app, base_url = live_shop
    preheated(base_url)
    log_in(page, base_url)
    click_url = f"{base_url}/seckill/{SKU}"

    with serving(other_origin(click_url)) as evil:
        evil_page = evil.replace("127.0.0.1", host) + f"/{attack}"
        page.goto(evil_page)
        if attack == "link":
            page.click("#go")
        if attack in ("link", "navigation"):
            page.wait_for_url(click_url)
            assert page.locator("#outcome").get_attribute("data-outcome") == "not_same_origin"
        else:
            page.wait_for_function("document.title === 'done'")

    assert reserved(app, base_url) == (0, 0)


def test_the_refused_clicks_page_buys_with_its_button(live_shop, page):
    app, base_url = live_shop
    preheated(base_url)
    log_in(page, base_url)
    with serving(other_origin(f"{base_url}/seckill/{SKU}")) as evil:
        page.goto(evil.replace("127.0.0.1", "localhost") + "/navigation")
        page.wait_for_url(f"{base_url}/seckill/{SKU}")
    page.click("#confirm")
    page.locator("#outcome").filter(has_text="秒杀成功").wait_for()
    assert reserved(app, base_url)[0] == 1


def test_the_sale_pages_own_button_buys(live_shop, page):
    app, base_url = live_shop
    preheated(base_url)
    log_in(page, base_url)
    page.goto(f"{base_url}/seckill")
    page.get_by_role("link", name="立即抢购").click()
    result = page.locator(f"#sale-{SKU} .result")
    result.filter(has_text="秒杀成功").wait_for()
    assert re.search(r"订单号:\d+", result.text_content())
    assert page.get_by_role("link", name="去支付").get_attribute("href").startswith("/seckill/pay?orderSn=")
    assert reserved(app, base_url)[0] == 1
