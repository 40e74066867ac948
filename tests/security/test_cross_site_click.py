"""Finding 6: a page on another site made a signed-in member's browser reserve a flash-sale
unit with a top-level link (SameSite=Lax sends the cookie on top-level navigations).

A browser's click reserves only when the browser says it comes from this origin
(``Sec-Fetch-Site: same-origin``; without that header, an Origin or Referer of this site);
any other gets a page whose same-origin form buys. An API client's JSON click still reserves,
unless a browser's Sec-Fetch-Site says another page drives it."""

import pytest
from sqlalchemy import func, select
from support.forms import logged_in
from support.seckill_web import JSON, SKU, preheated
from support.shop import csrf_token, make_app

from gmall_payment.adapters.sql.demo import SALE_UNITS
from gmall_payment.adapters.sql.models import db
from gmall_payment.adapters.sql.seckill import SeckillOrderRow

#: What Chromium sends on a top-level navigation (a link followed, a form, ``location=``).
NAVIGATION = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-User": "?1",
}
CROSS_SITE = {**NAVIGATION, "Sec-Fetch-Site": "cross-site", "Referer": "https://evil.example/"}
#: The test client's own origin.
HERE = "http://localhost"


def reserved(app, client) -> int:
    """Units taken from the gate; with none taken, no flash-sale order may exist either."""
    units = SALE_UNITS - preheated(client)["units_left"]
    if units == 0:
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(SeckillOrderRow)) == 0
    return units


def clicked(client, headers):
    return client.get(f"/seckill/{SKU}", headers=headers)


def test_a_cross_site_link_reserves_nothing_and_offers_a_form_of_this_site(app):
    demo = logged_in(app)
    preheated(demo)

    page = clicked(demo, CROSS_SITE)

    assert reserved(app, demo) == 0
    assert page.status_code == 200 and "秒杀成功" not in page.text
    assert f'action="/seckill/{SKU}"' in page.text and 'method="post"' in page.text
    bought = demo.post(
        f"/seckill/{SKU}",
        data={"csrf_token": csrf_token(page.text)},
        headers={**NAVIGATION, "Sec-Fetch-Site": "same-origin", "Origin": HERE},
    )
    assert bought.status_code == 200 and "秒杀成功,订单号:" in bought.text
    assert reserved(app, demo) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {**NAVIGATION, "Sec-Fetch-Site": "same-site", "Referer": "https://shop.evil.example/"},
        {**NAVIGATION, "Sec-Fetch-Site": "none"},  # typed, a bookmark, or a link in another program
        {**NAVIGATION, "Referer": "https://evil.example/"},  # a browser without Sec-Fetch-*
        {**NAVIGATION, "Referer": "http://localhost.evil.example/seckill"},
        {**NAVIGATION, "Origin": "null"},
        NAVIGATION,  # no Referer at all (Referrer-Policy: no-referrer)
    ],
    ids=["same-site", "none", "referer-elsewhere", "referer-lookalike", "origin-null", "no-referer"],
)
def test_browser_clicks_not_known_to_come_from_this_origin_reserve_nothing(app, headers):
    demo = logged_in(app)
    preheated(demo)
    page = clicked(demo, headers)
    assert page.status_code == 200 and f'action="/seckill/{SKU}"' in page.text
    assert reserved(app, demo) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {**NAVIGATION, "Sec-Fetch-Site": "same-origin", "Referer": f"{HERE}/seckill"},
        {**NAVIGATION, "Referer": f"{HERE}/seckill"},  # a browser without Sec-Fetch-*
    ],
    ids=["sec-fetch-site", "referer"],
)
def test_a_click_on_this_sites_page_reserves(app, headers):
    demo = logged_in(app)
    preheated(demo)
    page = clicked(demo, headers)
    assert page.status_code == 200 and "秒杀成功,订单号:" in page.text
    assert reserved(app, demo) == 1


def test_a_form_posted_from_elsewhere_has_no_token_and_reserves_nothing(app):
    demo = logged_in(app)
    preheated(demo)
    answer = demo.post(f"/seckill/{SKU}", headers={**CROSS_SITE, "Origin": "https://evil.example"})
    assert answer.status_code == 400
    assert reserved(app, demo) == 0


@pytest.mark.parametrize("site", ["cross-site", "same-site", "none"])
def test_a_json_click_another_page_drives_reserves_nothing(app, site):
    demo = logged_in(app)
    preheated(demo)
    answer = clicked(demo, {**JSON, "Sec-Fetch-Site": site, "Sec-Fetch-Mode": "cors"})
    assert answer.status_code == 403
    assert answer.json == {"outcome": "not_same_origin", "message": "请在本站的秒杀页面点击抢购"}
    assert reserved(app, demo) == 0


def test_an_api_client_and_this_sites_own_script_still_reserve(app):
    demo, alice = logged_in(app), logged_in(app, "alice", "alice123")
    preheated(demo)
    assert clicked(demo, JSON).status_code == 200  # curl, a load generator: no browser headers
    fetched = clicked(
        alice,
        {**JSON, "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Referer": f"{HERE}/seckill"},
    )
    assert (fetched.status_code, fetched.json["outcome"]) == (200, "reserved")
    assert reserved(app, demo) == 2


def test_behind_a_trusted_proxy_the_origin_compared_is_the_shoppers(tmp_path):
    """A browser without Sec-Fetch-* behind TLS ending at a load balancer: its Referer is the
    public https origin, which ProxyFix (TRUSTED_PROXIES) gives the click to compare with."""
    app = make_app(tmp_path, TRUSTED_PROXIES=1, SECKILL_TICK_SECONDS=0.05)
    try:
        demo, alice = logged_in(app), logged_in(app, "alice", "alice123")
        preheated(demo)
        proxied = {
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "shop.example",
            "X-Forwarded-For": "203.0.113.9",
        }
        elsewhere = clicked(demo, {**NAVIGATION, **proxied, "Referer": "http://shop.example/seckill"})
        assert f'action="/seckill/{SKU}"' in elsewhere.text and reserved(app, demo) == 0
        here = clicked(alice, {**NAVIGATION, **proxied, "Referer": "https://shop.example/seckill"})
        assert "秒杀成功,订单号:" in here.text and reserved(app, demo) == 1
    finally:
        app.extensions["gmall"].bus.close()
