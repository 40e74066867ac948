"""Behind a load balancer (issue "Safe to deploy", item 10): TRUSTED_PROXIES balancers' forwarded
headers are believed, outside every other layer (the click's fast path counts the client's
address beneath Flask); nobody else's are."""

import pytest
from support.forms import logged_in
from support.seckill_web import JSON, SKU, preheated
from support.shop import csrf_token, make_app, open_order

from gmall_payment.webapp import create_app


def clicks(tmp_path, proxies, forwarded_for):
    """The click of demo then alice through the same balancer (REMOTE_ADDR 127.0.0.1), each with
    its X-Forwarded-For, on a sale allowing one click per address: the two status codes."""
    app = make_app(
        tmp_path, TRUSTED_PROXIES=proxies, SECKILL_TICK_SECONDS=0.05, SECKILL_RATE_LIMIT_IP="1/minute"
    )
    try:
        members = logged_in(app), logged_in(app, "alice", "alice123")
        preheated(members[0])
        return [
            member.get(f"/seckill/{SKU}", headers={**JSON, "X-Forwarded-For": address}).status_code
            for member, address in zip(members, forwarded_for, strict=True)
        ]
    finally:
        app.extensions["gmall"].bus.close()


def test_with_no_trusted_proxy_a_forged_forwarded_for_changes_no_address(tmp_path):
    assert clicks(tmp_path, 0, ["203.0.113.1", "203.0.113.2"]) == [200, 429]


def test_behind_one_trusted_proxy_each_shopper_is_counted_at_the_address_it_forwards(tmp_path):
    assert clicks(tmp_path, 1, ["203.0.113.1", "203.0.113.2"]) == [200, 200]


def test_behind_one_trusted_proxy_the_shopper_cannot_forge_the_address_before_it(tmp_path):
    # The shopper sends "X-Forwarded-For: 198.51.100.7"; the balancer appends what it saw.
    assert clicks(tmp_path, 1, ["198.51.100.7, 203.0.113.1", "198.51.100.8, 203.0.113.1"]) == [200, 429]


def test_urls_built_from_the_request_are_the_balancers(tmp_path):
    """No PUBLIC_URL: the notify URL given to the provider is built from the request, as the
    shopper reached the balancer (https, its host), and only when the balancer is trusted."""
    forwarded = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "pay.example.com",
        "Referer": "https://pay.example.com/pay.html",
    }  # Flask-WTF checks it on https
    seen = {}
    for proxies in (0, 1):
        app = make_app(tmp_path / str(proxies), TRUSTED_PROXIES=proxies)
        client = logged_in(app)
        order = open_order(app)["order_sn"]
        page = client.get(f"/pay.html?orderToken={order}")
        started = client.post(
            "/pay/mockpay", headers=forwarded, data={"orderToken": order, "csrf_token": csrf_token(page.text)}
        )
        assert started.status_code == 303
        dispatcher = app.wsgi_app.app if proxies else app.wsgi_app  # beneath ProxyFix when it is on
        seen[proxies] = dispatcher.mounts["/mockpay"].ledger.trade(order).notify_url  # what checkout told it
    assert seen == {0: "http://localhost/notify/mockpay", 1: "https://pay.example.com/notify/mockpay"}


@pytest.mark.parametrize("value", [-1, "two", 1.5])
def test_a_bad_proxy_count_stops_the_shop_naming_the_setting(tmp_path, value):
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        create_app(
            {
                "INSTANCE_PATH": str(tmp_path),
                "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                "TRUSTED_PROXIES": value,
            }
        )
