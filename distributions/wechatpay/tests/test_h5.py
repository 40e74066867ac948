"""H5 pay for a mobile browser over real HTTP: the shop redirects to the offline gateway's h5_url
(opened with the shopper's IP), the shopper pays there and comes back to the shop's return page."""

import re
from html import unescape
from urllib.parse import parse_qs, urljoin, urlsplit

from support.shop import browser_login, csrf_token, notify_log, open_order, served_shop, wait_until_fulfilled
from wechat_support import SETTINGS, checkout_urls, gateway_of

PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def test_a_mobile_browser_pays_by_h5_and_comes_back_to_the_return_page(tmp_path):
    with served_shop(tmp_path, **SETTINGS) as (app, base_url):
        order_sn = open_order(app)["order_sn"]
        browser = browser_login(base_url)
        browser.headers["User-Agent"] = PHONE
        pay_page = browser.get(f"{base_url}/pay.html", params={"orderToken": order_sn})
        started = browser.post(
            f"{base_url}/pay/wechatpay",
            allow_redirects=False,
            data={"orderToken": order_sn, "csrf_token": csrf_token(pay_page.text)},
        )
        assert started.status_code == 303
        h5_url = started.headers["Location"]
        assert h5_url.startswith(f"{base_url}/wechatpay-sandbox/h5?prepay_id=")
        back = parse_qs(urlsplit(h5_url).query)["redirect_url"][0]
        assert back == f"{base_url}/pay/return/wechatpay?out_trade_no={order_sn}"
        cashier = browser.get(h5_url)
        assert cashier.status_code == 200 and order_sn in cashier.text
        fields = {
            name: unescape(value) for name, value in re.findall(r'name="(\w+)" value="([^"]*)"', cashier.text)
        }
        action = urljoin(
            h5_url, unescape(re.search(r'<form method="post" action="([^"]+)"', cashier.text).group(1))
        )

        returned = browser.post(action, data={**fields, "action": "pay", "scenario": "normal"})

        assert returned.status_code == 200 and returned.url == back  # the shop's return page
        wait_until_fulfilled(browser, base_url, order_sn)
        assert [e.outcome for e in notify_log(app)] == ["paid"]
        assert gateway_of(app).notifier.join(10)


def test_the_gateway_wants_the_shoppers_ip_for_h5(tmp_path):
    with served_shop(tmp_path, **SETTINGS) as (app, base_url):
        order_sn = open_order(app)["order_sn"]
        provider = app.extensions["gmall"].providers.get("wechatpay")
        with app.app_context():
            payment = app.extensions["gmall"].payments.start(order_sn, "wechatpay")
        body = {
            **provider.order_body(payment, checkout_urls(base_url)),
            "scene_info": {"h5_info": {"type": "Wap"}},
        }
        answer = provider.client.call("POST", "/v3/pay/transactions/h5", body)
        assert (answer.status, answer.body["code"]) == (400, "PARAM_ERROR")
