"""Finding 7: the flash sale's status told whether an order number exists: another member's
order answered 404, an unknown number 200 "pending". Both now answer alike, byte for byte
("lost": nothing holds either for the member)
(the order number aside), and the pay step tells both alike at once that the member has no
such order (it waits only for a unit the member holds)."""

import re
import time

import pytest
from support.forms import logged_in
from support.seckill_web import JSON, SKU, preheated
from support.shop import make_app

WAIT = 0.3
#: What differs between any two answers, whatever they are about: the logout form's token
#: (signed with the time, to the second) and the scripts' nonce of the page's CSP.
PER_REQUEST = re.compile(r"""(name="csrf_token" value="|nonce="|nonce-)[^"'\s;]+""")


@pytest.fixture
def shop(tmp_path):
    app = make_app(tmp_path, SECKILL_TICK_SECONDS=0.05, SECKILL_PAY_WAIT_SECONDS=WAIT)
    yield app
    app.extensions["gmall"].bus.close()


def demos_order(shop):
    """An order number of demo's, its order made."""
    demo = logged_in(shop)
    preheated(demo)
    order_sn = demo.get(f"/seckill/{SKU}", headers=JSON).json["order_sn"]
    assert demo.get(f"/seckill/pay?orderSn={order_sn}").status_code == 302  # made, and demo's
    return order_sn


def unknown_like(order_sn) -> str:
    """A number of the same length that no order has."""
    return order_sn[:-6] + ("000000" if order_sn[-6:] != "000000" else "111111")


def answered(client, url, order_sn, placeholder="ORDER"):
    started = time.monotonic()
    response = client.get(url.format(order_sn), headers=JSON if "/orders/" in url else {})
    elapsed = time.monotonic() - started
    headers = sorted(
        (k, PER_REQUEST.sub(r"\1…", v)) for k, v in response.headers.items() if k != "X-Request-ID"
    )
    body = PER_REQUEST.sub(r"\1…", response.text.replace(order_sn, placeholder))
    return (response.status_code, headers, body), elapsed


@pytest.mark.parametrize("url", ["/seckill/orders/{}", "/seckill/pay?orderSn={}"])
def test_another_members_order_answers_as_an_unknown_number(shop, url):
    order_sn = demos_order(shop)
    unknown = unknown_like(order_sn)
    alice = logged_in(shop, "alice", "alice123")
    alice.get("/orders")  # a page puts the form token in the session: later pages set no cookie

    theirs, theirs_took = answered(alice, url, order_sn)
    nobodys, nobodys_took = answered(alice, url, unknown)

    assert theirs == nobodys
    if "/pay" in url:  # told at once for both ("no such order of yours"): the time tells nothing either
        assert theirs[0] == 404 and "not_found" in theirs[2]
        assert theirs_took < WAIT and nobodys_took < WAIT
    else:
        assert theirs[0] == 200 and '"state":"lost"' in theirs[2]
