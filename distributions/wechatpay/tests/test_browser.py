"""A shopper pays with 微信支付 in a real browser: pay.html, the shop's QR page, the offline
gateway's page on a phone; the QR page moves on to the return page by itself once the payment is
in, and an answer of the shop's that is not the order (busy, restarting) does not move it on
while the shopper may still be scanning."""

import json
import re

from support.browser import log_in, shoot
from support.shop import open_order

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "locale": "zh-CN"}


def _qr_page(page, base_url, order_sn):
    """Log in, choose 微信支付 on pay.html: the QR page, its code drawn."""
    log_in(page, base_url)
    page.goto(f"{base_url}/pay.html?orderToken={order_sn}")
    page.get_by_role("button", name="微信支付").click()
    page.locator("#qr-code svg").wait_for()
    assert page.locator("h1").inner_text() == "扫码支付"


def _scan_and_pay(open_window, page):
    """Open the QR page's "scan with your phone" link on a phone, and pay there."""
    phone = open_window(**PHONE)
    phone.goto(page.locator("#scan-link").evaluate("link => link.href"))
    phone.get_by_role("button", name="确认支付").click()
    phone.wait_for_load_state()
    return phone


def _paid(page):
    """The QR page has gone on by itself to the return page, which says the order is paid."""
    page.wait_for_url(re.compile(r".*/pay/return/wechatpay.*"), timeout=20_000)
    page.locator("#verdict").filter(has_text="支付成功").wait_for(timeout=20_000)


def test_a_shopper_scans_the_qr_code_pays_on_the_phone_and_the_qr_page_moves_on(live, open_window):
    app, base_url = live
    order_sn = open_order(app)["order_sn"]
    page = open_window()
    _qr_page(page, base_url, order_sn)
    shoot(page, "wechatpay-qr")
    assert page.locator("#qr-status").inner_text().startswith("等待支付")

    phone = _scan_and_pay(open_window, page)
    shoot(phone, "wechatpay-phone-paid")

    _paid(page)
    assert page.console_messages == []


def test_answers_that_are_not_the_order_keep_the_qr_page_up_until_the_payment_is_in(live, open_window):
    app, base_url = live
    order_sn = open_order(app)["order_sn"]
    page = open_window()
    refused = []

    def busy_at_first(route):
        """The shop's polling endpoint answers 503 (JSON) then a proxy's HTML 502, then itself."""
        if len(refused) == 0:
            refused.append(503)
            route.fulfill(status=503, content_type="application/json", body=json.dumps({"error": "busy"}))
        elif len(refused) == 1:
            refused.append(502)
            route.fulfill(status=502, content_type="text/html", body="<h1>502 Bad Gateway</h1>")
        else:
            route.continue_()

    page.route(f"**/api/orders/{order_sn}", busy_at_first)
    _qr_page(page, base_url, order_sn)
    page.wait_for_timeout(4_500)  # the first poll and two more, two seconds apart

    assert refused == [503, 502]
    assert "/pay/wechatpay" in page.url and page.locator("#qr-code svg").is_visible()
    _scan_and_pay(open_window, page)
    _paid(page)
