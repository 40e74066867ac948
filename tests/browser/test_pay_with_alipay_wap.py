"""A shopper on a phone (390 px, an iPhone's User-Agent) pays with 支付宝 in a real browser: the
shop's pay.html, the offline gateway's phone cashier (手机网站支付), the return page; the
cashier's 返回商家 goes back to the order's pay.html. The phone cashier's screenshot is kept in
the browser artifacts (docs/screenshots/ with GMALL_WRITE_SCREENSHOTS=1) to be looked at."""

import re

import pytest
from support.browser import fits, log_in, shoot
from support.shop import member_orders

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def phone(open_window):
    """A phone's window: 390 × 844 CSS pixels, touch, a mobile Safari User-Agent."""
    return open_window(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        user_agent=IPHONE,
    )


def open_phone_cashier(phone, base_url, order_sn):
    phone.goto(f"{base_url}/pay.html?orderToken={order_sn}")
    phone.get_by_role("button", name="支付宝").click()
    phone.wait_for_url(re.compile(r".*/alipay-sandbox/gateway\.do.*"))
    phone.locator("#total_amount").wait_for()


def test_a_shopper_pays_with_alipay_on_a_phone(live_shop, phone):
    app, base_url = live_shop
    order_sn = member_orders(app)[0]
    log_in(phone, base_url)
    open_phone_cashier(phone, base_url, order_sn)

    assert phone.title() == "支付宝 手机收银台 (离线沙箱)"
    assert phone.locator("#out_trade_no").inner_text() == order_sn
    assert re.fullmatch(r"¥\d+\.\d\d", phone.locator("#total_amount").inner_text())
    assert fits(phone)  # nothing wider than the phone
    pay = phone.get_by_role("button", name="确认付款")
    box = pay.bounding_box()
    assert box["width"] >= 300 and box["height"] >= 44  # a full-width button a thumb can hit
    assert box["y"] + box["height"] <= 844  # above the fold
    shoot(phone, "alipay-wap-cashier")

    pay.tap()
    phone.wait_for_url(re.compile(r".*/pay/return/alipay.*"))
    verdict = phone.locator("#verdict")
    verdict.filter(has_text="支付成功").wait_for(timeout=15_000)  # the notify is in
    assert verdict.get_attribute("data-status") == "awaiting_shipment"
    assert fits(phone)


def test_the_phone_cashiers_way_back_is_the_orders_pay_page(live_shop, phone):
    app, base_url = live_shop
    order_sn = member_orders(app)[0]
    log_in(phone, base_url)
    open_phone_cashier(phone, base_url, order_sn)

    phone.get_by_role("link", name=re.compile("返回商家")).tap()

    phone.wait_for_url(f"{base_url}/pay.html?orderToken={order_sn}")
    assert phone.get_by_role("button", name="支付宝").is_visible()  # still unpaid: pay again
