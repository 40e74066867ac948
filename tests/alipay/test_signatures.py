"""Signature vectors: what python-alipay-sdk signs we verify, and where the SDK itself goes wrong."""

import copy
from urllib.parse import parse_qsl

import pytest
from alipay import AliPay
from support.alipay import APP_ID

from gmall_payment.plugins import rsa2
from gmall_payment.plugins.alipay.client import AlipayClient, signed_content
from gmall_payment.plugins.alipay.gateway import BRACE_BODY, QUERY, response_body

REQUEST = rsa2.REQUEST_UNSIGNED_FIELDS

REQUESTS = [
    {
        "app_id": APP_ID,
        "method": "alipay.trade.query",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": "2024-11-11 00:00:01",
        "version": "1.0",
        "biz_content": {"out_trade_no": "202411110001"},
    },
    {
        "app_id": APP_ID,
        "method": "alipay.trade.page.pay",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": "2024-11-11 23:59:59",
        "version": "1.0",
        "notify_url": "https://shop.example/notify/alipay?a=1&b=2",
        "return_url": "https://shop.example/pay/ok",
        "biz_content": {
            "subject": '谷粒商城-手机 & 充电器 = 1+1 {限量} "引号" 100%',
            "out_trade_no": "A-1",
            "total_amount": "0.01",
            "product_code": "FAST_INSTANT_TRADE_PAY",
        },
    },
    {
        "app_id": APP_ID,
        "method": "alipay.trade.refund",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": "2024-02-29 12:00:00",
        "version": "1.0",
        "biz_content": {"refund_amount": "99999999.99", "out_trade_no": "X", "out_request_no": "R/1+2=3"},
    },
]

NOTIFICATIONS = [
    {
        "app_id": APP_ID,
        "notify_id": "ac05099524730693a8b330c5ecf72da9786",
        "out_trade_no": "202411110001",
        "trade_no": "2024111122001400001",
        "total_amount": "123.45",
        "trade_status": "TRADE_SUCCESS",
        "subject": "谷粒商城-华为 Mate 60 & 充电器",
        "notify_time": "2024-11-11 00:00:03",
        "fund_bill_list": '[{"amount":"123.45","fundChannel":"ALIPAYACCOUNT"}]',
    },
    {
        "app_id": APP_ID,
        "notify_id": "n2",
        "out_trade_no": "B=1&C=2",
        "trade_no": "T",
        "total_amount": "0.01",
        "trade_status": "TRADE_CLOSED",
        "body": BRACE_BODY,
    },
]


def sdk(private_key, public_key) -> AliPay:
    """The SDK as it ships (RSA2), signing with ``private_key`` and checking with ``public_key``."""
    return AliPay(
        appid=APP_ID,
        app_private_key_string=rsa2.private_pem(private_key).decode(),
        alipay_public_key_string=rsa2.public_pem(public_key).decode(),
        sign_type="RSA2",
    )


def sdk_signed(client: AliPay, data: dict) -> dict:
    """The parameters as the SDK sends them: its signed query string, decoded."""
    return dict(parse_qsl(client.sign_data(copy.deepcopy(data)), keep_blank_values=True))


@pytest.mark.parametrize("data", REQUESTS, ids=["query", "page_pay", "refund"])
def test_requests_the_sdk_signs_are_exactly_what_the_gateway_accepts(merchant_keys, gateway_keys, data):
    client = sdk(merchant_keys[0], gateway_keys[1])
    params = sdk_signed(client, data)
    sdk_string = "&".join(f"{k}={v}" for k, v in client._ordered_data(copy.deepcopy(data)))

    assert rsa2.canonical_string(params, REQUEST) == sdk_string
    assert (
        rsa2.sign({k: v for k, v in params.items() if k != "sign"}, merchant_keys[0], REQUEST)
        == params["sign"]
    )
    assert rsa2.verify(params, params["sign"], merchant_keys[1], REQUEST)
    for key in params:
        if key != "sign":
            changed = {**params, key: params[key] + "x"}
            assert not rsa2.verify(changed, params["sign"], merchant_keys[1], REQUEST), key


@pytest.mark.parametrize("data", NOTIFICATIONS, ids=["paid", "closed-with-braces"])
def test_notifications_the_sdk_signs_are_exactly_what_we_accept(gateway_keys, other_keys, data):
    """Alipay signs a notify without sign_type; it travels with sign_type=RSA2, which we leave out."""
    params = {**sdk_signed(sdk(gateway_keys[0], gateway_keys[1]), data), "sign_type": "RSA2"}

    assert rsa2.sign(data, gateway_keys[0]) == params["sign"]  # RSA PKCS#1 v1.5: deterministic
    assert rsa2.verify(params, params["sign"], gateway_keys[1])
    assert rsa2.verify(params, params["sign"], [other_keys[1], gateway_keys[1]])  # rotation
    assert not rsa2.verify(params, params["sign"], other_keys[1])
    for key in data:
        assert not rsa2.verify({**params, key: params[key] + "0"}, params["sign"], gateway_keys[1]), key


def test_an_empty_value_breaks_the_sdks_verify_but_not_ours(gateway_keys):
    """Alipay leaves empty fields out of what it signs; the SDK's verify puts them back in."""
    data = {**NOTIFICATIONS[0], "passback_params": "", "sign_type": "RSA2"}
    sign = rsa2.sign(data, gateway_keys[0])
    client = sdk(gateway_keys[0], gateway_keys[1])

    assert rsa2.verify({**data, "sign": sign}, sign, gateway_keys[1])
    assert client.verify(dict(data), sign) is False  # the SDK: a genuine notify refused
    without_empty = {k: v for k, v in data.items() if k != "passback_params"}
    assert client.verify(without_empty, sign) is True  # ... only because of the empty field


def test_a_brace_inside_a_value_breaks_the_sdks_response_check_but_not_ours(merchant_keys, gateway_keys):
    content = {
        "code": "10000",
        "msg": "Success",
        "out_trade_no": "A-1",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "0.01",
        "body": BRACE_BODY,
    }
    raw = response_body(QUERY, content, gateway_keys[0])
    plain = sdk(merchant_keys[0], gateway_keys[1])
    ours = AlipayClient(APP_ID, merchant_keys[0], [gateway_keys[1]], gateway=lambda: "unused")

    assert ours._verify_and_return_sync_response(raw, "alipay_trade_query_response") == content
    with pytest.raises(Exception) as refused:
        plain._verify_and_return_sync_response(raw, "alipay_trade_query_response")
    assert refused.type.__name__ in ("AliPayValidationError", "JSONDecodeError")
    control = response_body(QUERY, {**content, "body": "no braces"}, gateway_keys[0])
    assert (
        plain._verify_and_return_sync_response(control, "alipay_trade_query_response")["body"] == "no braces"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"a_response":{"x":"}"},"sign":"s"}', '{"x":"}"}'),
        (
            '{ "sign" : "s" , "a_response" : { "x" : "\\"}{" , "n" : [1, {"y": "}"}] } }',
            '{ "x" : "\\"}{" , "n" : [1, {"y": "}"}] }',
        ),
        ('{"other":"a_response {","a_response":{"k":"v"}}', '{"k":"v"}'),
        ('{"a_response":{"k":"\\u007d"},"sign":"s"}', '{"k":"\\u007d"}'),
        ('{"error_response":{"code":"40002"}}', None),
    ],
)
def test_signed_content_is_the_exact_text_of_the_member(raw, expected):
    assert signed_content(raw, "a_response") == expected


def test_signed_content_refuses_what_is_not_an_object():
    with pytest.raises(ValueError):
        signed_content("[1, 2]", "a_response")


def test_clients_made_from_the_same_keys_share_their_parse_and_sign_as_the_sdk(merchant_keys, gateway_keys):
    first, second = (
        AlipayClient(APP_ID, merchant_keys[0], [gateway_keys[1]], gateway=lambda: "unused") for _ in range(2)
    )
    assert first.app_private_key is second.app_private_key
    assert first.alipay_public_key is second.alipay_public_key
    other_keys = rsa2.generate_key_pair()
    third = AlipayClient(APP_ID, other_keys[0], [gateway_keys[1]], gateway=lambda: "unused")
    assert third.app_private_key is not first.app_private_key
    plain = sdk(merchant_keys[0], gateway_keys[1])
    assert first.sign_data(dict(REQUESTS[0])) == plain.sign_data(dict(REQUESTS[0]))
