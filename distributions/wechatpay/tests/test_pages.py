"""The WeChat Pay pages are the shop's: its stylesheet, a phone's viewport (390 px wide), its
Content-Security-Policy; the shop's QR page and the offline gateway's pages of the phone."""

import re
from datetime import datetime, timedelta

from support.headers import assert_inline_code_has_the_nonce, assert_protected, assert_styled_as_the_shop
from support.shop import open_order
from wechat_support import qr_page, scan_and_pay, scan_page

from gmall_payment.adapters.config import LifecycleSettings


def test_the_qr_page_and_the_phones_pages_look_like_the_shops_under_its_policy(live):
    app, base_url = live
    order_sn = open_order(app)["order_sn"]
    browser, qr = qr_page(base_url, order_sn)
    pages = {
        "QR page": qr,
        "scan": scan_page(browser, base_url, qr),
        "cancelled": scan_and_pay(browser, base_url, qr, action="cancel"),
        "unknown code": browser.get(
            f"{base_url}/wechatpay-sandbox/scan", params={"code_url": "weixin://wxpay/bizpayurl?pr=none"}
        ),
    }
    assert (
        pages["unknown code"].status_code == 404
        and 'data-code="ORDER_NOT_EXIST"' in pages["unknown code"].text
    )
    assert_inline_code_has_the_nonce(qr, "QR page")
    assert '<script src="/static/checkout_qr.js">' in qr.text  # its polling, no inline code
    assert '<figure class="qr" id="qr-code"' in qr.text and 'class="facts" id="order-facts"' in qr.text
    for where, page in pages.items():
        assert_protected(page, where)
        assert_styled_as_the_shop(page, where)
    for where in ("scan", "cancelled", "unknown code"):  # beneath Flask: no nonce, so no inline code
        assert "<script" not in pages[where].text and "<style" not in pages[where].text, where
        assert '<main class="page narrow">' in pages[where].text, where
    assert browser.get(f"{base_url}/static/shop.css").status_code == 200


def test_the_qr_page_gives_its_deadline_in_the_shop_s_zone_as_it_gives_the_order_s_time(live):
    app, base_url = live
    order_sn = open_order(app)["order_sn"]
    _, qr = qr_page(base_url, order_sn)
    created = re.search(r"<dt>下单时间</dt><dd><time>([^<]+)</time>", qr.text)[1]
    deadline = re.search(r'id="qr-expiry">请在 <time>([^<]+)</time>', qr.text)[1]

    waited = datetime.fromisoformat(deadline) - datetime.fromisoformat(created)

    timeout = timedelta(seconds=LifecycleSettings.from_settings(app.config).order_pay_timeout_seconds)
    assert timeout <= waited < timeout + timedelta(minutes=1), (created, deadline)  # the order's minute
