"""手机网站支付 (``alipay.trade.wap.pay``): the request the shop signs, which browsers get it (by
ALIPAY_PRODUCT and the User-Agent), the offline gateway's phone cashier, and a phone paying end
to end: the same notify and return as page pay, paid once."""

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from support.alipay import a_payment, pay_on_cashier, shop_and_gateway, start_on_cashier
from support.shop import browser_login, member_orders, notify_log, snapshot, wait_for

from gmall_payment.plugins import rsa2
from gmall_payment.plugins.alipay.config import AlipayConfig
from gmall_payment.plugins.alipay.provider import AlipayProvider
from gmall_payment.ports.provider import CheckoutUrls

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Mobile Safari/537.36"
)
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
PAY_PAGE = "http://127.0.0.1:9/pay.html?orderToken=202411110001"
WAP, PAGE = "alipay.trade.wap.pay", "alipay.trade.page.pay"


def urls(user_agent=IPHONE, pay_page_url=PAY_PAGE):
    return CheckoutUrls(
        "http://127.0.0.1:9/notify/alipay",
        "http://127.0.0.1:9/pay/return/alipay",
        user_agent=user_agent,
        pay_page_url=pay_page_url,
    )


def signed_request(provider, user_agent=IPHONE, **changes) -> dict:
    """The fields of the form checkout gives the shopper's browser to post to the gateway."""
    checkout = provider.checkout(a_payment(), urls(user_agent, **changes))
    return dict(checkout.form.fields)


def provider_for(settings, **changes) -> AlipayProvider:
    return AlipayProvider(AlipayConfig.from_settings({**settings, **changes}))


def test_a_phone_gets_wap_pay_signed_with_alipays_product_code_and_the_way_back(settings, merchant_keys):
    fields = signed_request(provider_for(settings))
    biz = json.loads(fields["biz_content"])

    assert fields["method"] == WAP
    # python-alipay-sdk's api_alipay_trade_wap_pay sends QUICK_WAP_PAY; Alipay documents QUICK_WAP_WAY.
    assert biz["product_code"] == "QUICK_WAP_WAY"
    assert biz["quit_url"] == PAY_PAGE  # the phone cashier's 返回商家: the order's pay.html
    assert (biz["out_trade_no"], biz["total_amount"]) == ("202411110001", "123.45")
    assert (fields["notify_url"], fields["return_url"]) == (
        "http://127.0.0.1:9/notify/alipay",
        "http://127.0.0.1:9/pay/return/alipay",
    )
    assert rsa2.verify(fields, fields["sign"], merchant_keys[1], rsa2.REQUEST_UNSIGNED_FIELDS)
    tampered = {**fields, "biz_content": fields["biz_content"].replace("pay.html", "evil.html")}
    assert not rsa2.verify(tampered, fields["sign"], merchant_keys[1], rsa2.REQUEST_UNSIGNED_FIELDS)


def test_a_computer_gets_page_pay_without_a_quit_url(settings):
    fields = signed_request(provider_for(settings), DESKTOP)
    biz = json.loads(fields["biz_content"])
    assert (fields["method"], biz["product_code"]) == (PAGE, "FAST_INSTANT_TRADE_PAY")
    assert "quit_url" not in biz


@pytest.mark.parametrize(
    ("product", "user_agent", "method"),
    [
        (None, IPHONE, WAP),  # auto, the default
        ("auto", ANDROID, WAP),
        ("auto", "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) Safari/604.1", WAP),
        ("auto", DESKTOP, PAGE),
        ("auto", "", PAGE),  # no User-Agent at all: the computer's
        ("page", IPHONE, PAGE),
        ("PAGE", ANDROID, PAGE),
        ("wap", DESKTOP, WAP),
        (" Wap ", "", WAP),
    ],
)
def test_the_product_is_chosen_by_the_setting_and_the_user_agent(settings, product, user_agent, method):
    provider = provider_for(settings, ALIPAY_PRODUCT=product)
    assert signed_request(provider, user_agent)["method"] == method


def test_an_unknown_product_stops_the_start_naming_the_setting(settings):
    with pytest.raises(ValueError, match=r"ALIPAY_PRODUCT: 'h5' is not one of auto, page, wap"):
        AlipayConfig.from_settings({**settings, "ALIPAY_PRODUCT": "h5"})


def test_the_way_back_follows_the_return_base_and_is_required(settings):
    provider = provider_for(settings, ALIPAY_RETURN_BASE_URL="https://tunnel.example/shop")
    biz = json.loads(signed_request(provider)["biz_content"])
    assert biz["quit_url"] == "https://tunnel.example/shop/pay.html?orderToken=202411110001"
    with pytest.raises(ValueError, match="pay_page_url must be an absolute"):
        signed_request(provider, pay_page_url=None)
    with pytest.raises(ValueError, match="pay_page_url must be an absolute"):
        signed_request(provider, pay_page_url="/pay.html?orderToken=1")


# the offline gateway's phone cashier


def post_form(checkout, session=None):
    return (session or requests).post(checkout.form.action, data=dict(checkout.form.fields))


def test_the_gateway_serves_a_phone_cashier_whose_way_back_is_the_quit_url(settings, gateway):
    provider = provider_for(settings, ALIPAY_GATEWAY_URL=gateway.url)
    cashier = post_form(provider.checkout(a_payment(), urls()))

    assert cashier.status_code == 200 and "支付宝 手机收银台" in cashier.text, cashier.text
    assert 'name="viewport" content="width=device-width' in cashier.text
    assert re.search(r'id="quit" href="([^"]+)"', cashier.text).group(1).replace("&amp;", "&") == PAY_PAGE
    assert 'id="total_amount">¥123.45<' in cashier.text
    assert gateway.ledger.get("202411110001").method == WAP


def test_the_phone_cashiers_return_is_signed_as_wap_pays(settings, gateway, gateway_keys):
    provider = provider_for(settings, ALIPAY_GATEWAY_URL=gateway.url)
    cashier = post_form(provider.checkout(a_payment(), urls()))
    back = pay_on_cashier(cashier)
    assert back.status_code == 303
    returned = {key: values[0] for key, values in parse_qs(urlsplit(back.headers["Location"]).query).items()}
    assert returned["method"] == "alipay.trade.wap.pay.return"
    assert rsa2.verify(returned, returned["sign"], gateway_keys[1])


@pytest.mark.parametrize(
    ("change", "sub_code", "words"),
    [
        (lambda biz: biz.pop("quit_url"), "ACQ.INVALID_PARAMETER", "缺少 quit_url"),
        (lambda biz: biz.update(quit_url="javascript:alert(1)"), "ACQ.INVALID_PARAMETER", "quit_url"),
        (lambda biz: biz.update(product_code="QUICK_WAP_PAY"), "ACQ.PRODUCT_CODE_ERROR", "QUICK_WAP_WAY"),
    ],
)
def test_the_gateway_refuses_a_wap_pay_alipay_would_refuse(
    settings, gateway, merchant_keys, change, sub_code, words
):
    fields = dict(
        provider_for(settings, ALIPAY_GATEWAY_URL=gateway.url).checkout(a_payment(), urls()).form.fields
    )
    biz = json.loads(fields["biz_content"])
    change(biz)
    fields["biz_content"] = json.dumps(biz, ensure_ascii=False)
    fields["sign"] = rsa2.sign(fields, merchant_keys[0], rsa2.REQUEST_UNSIGNED_FIELDS)  # signed as sent
    refused = requests.post(gateway.url, data=fields)
    assert refused.status_code == 400
    assert sub_code in refused.text and words in refused.text
    assert gateway.ledger.get("202411110001") is None  # nothing opened


# a phone pays, end to end


@pytest.fixture
def shop(tmp_path, settings):
    """The gateway and the shop configured for it (ALIPAY_PRODUCT auto), each served."""
    with shop_and_gateway(tmp_path, settings) as served:
        yield served


def test_a_phone_pays_on_the_phone_cashier_and_the_order_is_paid_once(shop):
    app, gateway, base_url = shop
    order_sn = member_orders(app)[0]
    phone = browser_login(base_url)
    phone.headers["User-Agent"] = IPHONE
    phone, cashier = start_on_cashier(app, base_url, order_sn, browser=phone)
    assert "支付宝 手机收银台" in cashier.text
    quit_url = re.search(r'id="quit" href="([^"]+)"', cashier.text).group(1).replace("&amp;", "&")
    assert quit_url == f"{base_url}/pay.html?orderToken={order_sn}"
    assert phone.get(quit_url).status_code == 200  # the way back is the shop's own pay page
    before = snapshot(app)

    returned = pay_on_cashier(cashier, scenario="duplicate", session=phone, follow=True)

    assert returned.status_code == 200 and "/pay/return/alipay" in returned.url
    view = wait_for(
        lambda: (
            (v := phone.get(f"{base_url}/api/orders/{order_sn}").json())["status"] == "awaiting_shipment"
            and v
        )
    )
    assert gateway.notifier.join(10)
    app.extensions["gmall"].bus.join()
    [payment] = view["payments"]
    assert (payment["status"], payment["trade_no"]) == ("paid", gateway.ledger.get(order_sn).trade_no)
    assert [(e.outcome, e.verified, e.accepted) for e in notify_log(app)] == [
        ("paid", True, True),
        ("duplicate", True, True),  # the copy changes nothing
    ]
    assert snapshot(app)[2] - before[2] == 2  # payment.succeeded and order.paid, once each
    assert gateway.ledger.get(order_sn).method == WAP


def test_a_computer_in_the_same_shop_still_gets_the_computers_cashier(shop):
    app, _, base_url = shop
    _, cashier = start_on_cashier(app, base_url, member_orders(app)[0])
    assert "支付宝 收银台" in cashier.text and "手机收银台" not in cashier.text
    assert 'id="quit"' not in cashier.text
