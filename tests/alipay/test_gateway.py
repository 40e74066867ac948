"""The offline gateway over real HTTP, driven by the provider (python-alipay-sdk underneath)."""

import json
import re
import time
from decimal import Decimal

import pytest
import requests
from support.alipay import APP_ID, SELLER_ID, SPEEDUP, a_payment, open_cashier, pay_on_cashier

from gmall_payment.core.errors import ProviderError, TradeNotFound
from gmall_payment.core.model import RefundNotice, TradeStatus
from gmall_payment.plugins import rsa2
from gmall_payment.plugins.alipay.client import beijing_timestamp, signed_content
from gmall_payment.plugins.alipay.config import NOTIFY_SCHEDULE
from gmall_payment.plugins.alipay.gateway import BRACE_BODY
from gmall_payment.plugins.alipay.provider import AlipayProvider

REQUEST = rsa2.REQUEST_UNSIGNED_FIELDS


def paid(provider, gateway, receiver, out_trade_no="202411110001", amount="123.45", scenario="normal"):
    payment = a_payment(out_trade_no, amount)
    cashier = open_cashier(provider, payment, receiver.url)
    assert cashier.status_code == 200 and "支付宝 收银台" in cashier.text, cashier.text
    back = pay_on_cashier(cashier, scenario=scenario)
    assert back.status_code == 303
    return payment, back


def raw_call(gateway, key, method="alipay.trade.query", biz=None, sign_with=None, **changes):
    """A request built by hand: signed as Alipay specifies (sign_type included), then changed."""
    params = {
        "app_id": APP_ID,
        "method": method,
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": beijing_timestamp(),
        "version": "1.0",
        "biz_content": json.dumps(biz or {"out_trade_no": "202411110001"}),
    }
    params["sign"] = rsa2.sign(params, sign_with or key, REQUEST)
    params.update(changes)
    params = {k: v for k, v in params.items() if v is not None}
    return requests.post(gateway.url, data=params)


def answer(response, method="alipay.trade.query"):
    body = response.json()
    return body.get(f"{method.replace('.', '_')}_response") or body.get("error_response"), body.get("sign")


# paying, notifying, querying


def test_pay_notifies_a_signed_notify_the_provider_accepts(provider, gateway, receiver):
    payment, back = paid(provider, gateway, receiver)
    assert gateway.notifier.join(5)

    [notify] = receiver.received
    notification = provider.parse_notification(notify)
    trade = gateway.ledger.get(payment.out_trade_no)
    assert (notification.status, notification.total_amount, notification.trade_no) == (
        TradeStatus.PAID,
        Decimal("123.45"),
        trade.trade_no,
    )
    assert (notify["app_id"], notify["seller_id"], notify["notify_type"]) == (
        APP_ID,
        SELLER_ID,
        "trade_status_sync",
    )
    assert notify["buyer_pay_amount"] == notify["total_amount"] == "123.45"
    assert "out_trade_no=202411110001" in back.headers["Location"]
    assert "sign=" in back.headers["Location"]  # the return is signed, though the shop reads its own database


def test_query_answers_as_alipay_does(provider, gateway, receiver):
    with pytest.raises(TradeNotFound) as missing:
        provider.query(a_payment("NEVER-OPENED"))
    assert (missing.value.code, missing.value.sub_code) == ("40004", "ACQ.TRADE_NOT_EXIST")

    payment = a_payment()
    open_cashier(provider, payment, receiver.url)
    waiting = provider.query(payment)
    assert (waiting.status, waiting.total_amount) == (TradeStatus.PENDING, Decimal("123.45"))

    pay_on_cashier(open_cashier(provider, payment, receiver.url))
    now_paid = provider.query(payment)
    assert (now_paid.status, now_paid.trade_no) == (
        TradeStatus.PAID,
        gateway.ledger.get("202411110001").trade_no,
    )
    assert json.loads(now_paid.raw)["send_pay_date"]


def test_refunds_full_partial_and_repeated(provider, gateway, receiver):
    payment, _ = paid(provider, gateway, receiver, amount="100.00")

    first = provider.refund(payment, Decimal("30.00"), "R1")
    repeated = provider.refund(payment, Decimal("30.00"), "R1")
    second = provider.refund(payment, Decimal("50.00"), "R2")
    assert (first.fund_change, first.refunded_total) == (True, Decimal("30.00"))
    assert (repeated.fund_change, repeated.refunded_total) == (False, Decimal("30.00"))  # the same refund
    assert (second.fund_change, second.refunded_total) == (True, Decimal("80.00"))
    with pytest.raises(ProviderError) as too_much:
        provider.refund(payment, Decimal("20.01"), "R3")
    assert too_much.value.sub_code == "ACQ.REASON_TRADE_REFUND_FEE_ERR"
    with pytest.raises(ProviderError) as discordant:
        provider.refund(payment, Decimal("31.00"), "R1")
    assert discordant.value.sub_code == "ACQ.DISCORDANT_REPEAT_REQUEST"
    assert provider.query(payment).status is TradeStatus.PAID

    last = provider.refund(payment, Decimal("20.00"), "R4")
    assert (last.fund_change, last.refunded_total) == (True, Decimal("100.00"))
    assert provider.query(payment).status is TradeStatus.CLOSED  # a full refund closes the trade
    assert provider.refund(payment, Decimal("20.00"), "R4").fund_change is False
    with pytest.raises(ProviderError) as closed:
        provider.refund(payment, Decimal("0.01"), "R5")
    assert closed.value.sub_code == "ACQ.TRADE_HAS_CLOSE"
    assert gateway.ledger.get(payment.out_trade_no).refunds == {
        "R1": Decimal("30.00"),
        "R2": Decimal("50.00"),
        "R4": Decimal("20.00"),
    }
    assert gateway.notifier.join(5)
    # One notify per refund that moved money (none for the repeats, none for the refused ones):
    # a partial refund leaves the trade TRADE_SUCCESS, the last closes it (Alipay's 退款通知).
    assert [
        (n["trade_status"], n.get("refund_fee"), n.get("out_biz_no"), "gmt_close" in n)
        for n in receiver.received
    ] == [
        ("TRADE_SUCCESS", None, None, False),  # paid
        ("TRADE_SUCCESS", "30.00", "R1", False),
        ("TRADE_SUCCESS", "80.00", "R2", False),
        ("TRADE_CLOSED", "100.00", "R4", True),
    ]
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", n["gmt_refund"]) for n in receiver.received[1:]
    )
    partial, closed = (provider.parse_notification(receiver.received[i]) for i in (1, 3))
    assert (partial.status, partial.refund) == (
        TradeStatus.PAID,
        RefundNotice("R1", None, succeeded=True, refunded_total=Decimal("30.00")),
    )
    assert (closed.status, closed.refund) == (
        TradeStatus.CLOSED,
        RefundNotice("R4", None, succeeded=True, refunded_total=Decimal("100.00")),
    )


def test_one_full_refund_and_refunds_of_what_was_not_paid(provider, gateway, receiver):
    payment, _ = paid(provider, gateway, receiver, amount="9.90")
    assert provider.refund(payment, Decimal("9.90"), "ALL").refunded_total == Decimal("9.90")
    unpaid = a_payment("UNPAID", "1.00")
    open_cashier(provider, unpaid, receiver.url)
    with pytest.raises(ProviderError) as not_paid:
        provider.refund(unpaid, Decimal("1.00"), "X")
    assert not_paid.value.sub_code == "ACQ.TRADE_STATUS_ERROR"
    with pytest.raises(TradeNotFound):
        provider.refund(a_payment("NOPE"), Decimal("1.00"), "X")


def test_close_an_unpaid_trade_notifies_trade_closed(provider, gateway, receiver):
    payment = a_payment()
    open_cashier(provider, payment, receiver.url)
    provider.close(payment)
    assert gateway.notifier.join(5)

    assert provider.query(payment).status is TradeStatus.CLOSED
    [notify] = receiver.received
    assert provider.parse_notification(notify).status is TradeStatus.CLOSED
    with pytest.raises(ProviderError) as again:
        provider.close(payment)
    assert again.value.sub_code == "ACQ.TRADE_STATUS_ERROR"
    with pytest.raises(TradeNotFound):
        provider.close(a_payment("NOPE"))
    reopened = open_cashier(provider, payment, receiver.url)
    assert "ACQ.TRADE_HAS_CLOSE" in reopened.text


def test_close_of_a_paid_trade_is_refused(provider, gateway, receiver):
    payment, _ = paid(provider, gateway, receiver)
    with pytest.raises(ProviderError) as refused:
        provider.close(payment)
    assert refused.value.sub_code == "ACQ.TRADE_STATUS_ERROR"


def test_cancel_pays_nothing_and_goes_back(provider, gateway, receiver):
    payment = a_payment()
    back = pay_on_cashier(open_cashier(provider, payment, receiver.url), action="cancel")
    assert back.headers["Location"].endswith("out_trade_no=202411110001")
    assert gateway.notifier.join(5) and receiver.received == []
    assert provider.query(payment).status is TradeStatus.PENDING


def test_page_pay_with_another_amount_for_the_same_trade_is_refused(provider, gateway, receiver):
    open_cashier(provider, a_payment(amount="1.00"), receiver.url)
    again = open_cashier(provider, a_payment(amount="2.00"), receiver.url)
    assert "ACQ.CONTEXT_INCONSISTENT" in again.text


# requests the gateway refuses, as Alipay does


@pytest.mark.parametrize(
    ("changes", "code", "sub_code"),
    [
        ({"sign": "tampered"}, "40002", "isv.invalid-signature"),
        ({"biz_content": '{"out_trade_no":"OTHER"}'}, "40002", "isv.invalid-signature"),
        ({"sign": None}, "40001", "isv.missing-signature"),
        ({"timestamp": "2024/11/11 00:00:00"}, "40002", "isv.invalid-timestamp"),
        ({"sign_type": "RSA"}, "40002", "isv.invalid-signature-type"),
        ({"method": "alipay.trade.pay.everything"}, "40002", "isv.invalid-method"),
    ],
)
def test_bad_requests_are_answered_with_alipays_codes(
    gateway, merchant_keys, gateway_keys, changes, code, sub_code
):
    response = raw_call(gateway, merchant_keys[0], **changes)
    content, sign = answer(response)
    assert (content["code"], content["msg"], content["sub_code"]) == (
        code,
        {"40001": "Missing Required Arguments", "40002": "Invalid Arguments"}[code],
        sub_code,
    )
    member = "error_response" if sub_code == "isv.invalid-method" else "alipay_trade_query_response"
    assert rsa2.verify_text(signed_content(response.text, member), sign, gateway_keys[1])


def test_a_request_signed_with_another_key_is_refused_and_says_what_it_verified(
    gateway, merchant_keys, other_keys
):
    content, _ = answer(raw_call(gateway, merchant_keys[0], sign_with=other_keys[0]))
    assert content["sub_code"] == "isv.invalid-signature"
    assert "app_id=" + APP_ID in content["sub_msg"] and "sign_type=RSA2" in content["sub_msg"]


def test_an_unknown_app_is_refused_unsigned(gateway, merchant_keys):
    content, sign = answer(raw_call(gateway, merchant_keys[0], app_id="2021999999999999"))
    assert (content["code"], content["sub_code"], sign) == ("40002", "isv.invalid-app-id", None)


def test_a_valid_request_is_answered_and_signed_over_the_exact_text(gateway, merchant_keys, gateway_keys):
    response = raw_call(gateway, merchant_keys[0])
    content, sign = answer(response)
    assert (content["code"], content["sub_code"]) == ("40004", "ACQ.TRADE_NOT_EXIST")
    assert content["out_trade_no"] == "202411110001" and content["buyer_pay_amount"] == "0.00"
    assert rsa2.verify_text(
        signed_content(response.text, "alipay_trade_query_response"), sign, gateway_keys[1]
    )
    assert response.headers["Content-Type"].startswith("application/json")


def test_the_sdk_as_shipped_is_refused_where_the_server_is_not_in_beijing(
    gateway, merchant_keys, monkeypatch
):
    """Evidence for the Beijing-time fix: the SDK stamps local time, the gateway reads Beijing time."""
    import time as time_module

    from alipay import AliPay

    monkeypatch.setenv("TZ", "America/New_York")
    time_module.tzset()
    try:
        plain = AliPay(
            appid=APP_ID,
            app_private_key_string=rsa2.private_pem(merchant_keys[0]).decode(),
            alipay_public_key_string=rsa2.public_pem(merchant_keys[1]).decode(),
        )
        data = plain.build_body("alipay.trade.query", {"out_trade_no": "202411110001"})
        content, _ = answer(requests.get(gateway.url + "?" + plain.sign_data(data)))
    finally:
        monkeypatch.delenv("TZ")
        time_module.tzset()
    assert content["sub_code"] == "isv.invalid-timestamp"
    assert "北京时间" in content["sub_msg"]


# the notify schedule and the scenarios


def test_notify_retries_on_alipays_schedule_compressed(provider, gateway, receiver):
    receiver.failures = 99
    started = time.monotonic()
    paid(provider, gateway, receiver)
    assert gateway.notifier.join(10)

    attempts = gateway.notifier.attempts
    assert len(attempts) == len(receiver.received) == 8  # at once, then 4m 10m 10m 1h 2h 6h 15h
    assert not any(a.acknowledged for a in attempts)
    gaps = [later.at - earlier.at for earlier, later in zip(attempts, attempts[1:], strict=False)]
    expected = [wait / SPEEDUP for wait in NOTIFY_SCHEDULE[1:]]
    assert expected == pytest.approx([240 / SPEEDUP, 0.025, 0.025, 0.15, 0.3, 0.9, 2.25])
    # Never early; late by at most a bound a loaded machine keeps (the uncompressed schedule
    # would wait 240 s before the second attempt, which join(10) refuses).
    for gap, wait in zip(gaps, expected, strict=True):
        assert wait <= gap < wait + 2.0, (gaps, expected)
    assert attempts[0].at - started < 2.0


def test_notify_stops_at_the_first_success(provider, gateway, receiver):
    receiver.failures = 2
    paid(provider, gateway, receiver)
    assert gateway.notifier.join(5)
    assert [(a.status, a.body) for a in gateway.notifier.attempts] == [(200, "failure")] * 2 + [
        (200, "success")
    ]
    assert receiver.received[0] == receiver.received[2]  # a retry is the same notify, same notify_id


def test_duplicate_scenario_delivers_the_same_notify_twice(provider, gateway, receiver):
    paid(provider, gateway, receiver, scenario="duplicate")
    assert gateway.notifier.join(5)
    assert len(receiver.received) == 2 and receiver.received[0] == receiver.received[1]


def test_tampered_scenario_sends_a_notify_that_fails_verification(provider, gateway, receiver):
    from gmall_payment.core.errors import NotificationRejected

    paid(provider, gateway, receiver, scenario="tampered")
    assert gateway.notifier.join(5)
    with pytest.raises(NotificationRejected) as refused:
        provider.parse_notification(receiver.received[0])
    assert refused.value.reason == "bad_signature"


def test_empty_scenario_sends_an_empty_field_left_out_of_the_signature(provider, gateway, receiver):
    paid(provider, gateway, receiver, scenario="empty")
    assert gateway.notifier.join(5)
    [notify] = receiver.received
    assert notify["passback_params"] == ""
    assert provider.parse_notification(notify).status is TradeStatus.PAID


def test_brace_scenario_puts_a_brace_in_the_notify_and_the_query(provider, gateway, receiver):
    payment, _ = paid(provider, gateway, receiver, scenario="brace")
    assert gateway.notifier.join(5)
    assert receiver.received[0]["body"] == BRACE_BODY
    assert provider.parse_notification(receiver.received[0]).status is TradeStatus.PAID
    answer_ = provider.query(payment)  # our extraction copes with the } inside "body"
    assert json.loads(answer_.raw)["body"] == BRACE_BODY


def test_lost_scenario_never_notifies_but_query_tells_the_truth(provider, gateway, receiver):
    payment, _ = paid(provider, gateway, receiver, scenario="lost")
    assert gateway.notifier.join(5)
    assert receiver.received == [] and gateway.notifier.attempts == []
    assert provider.query(payment).status is TradeStatus.PAID


def test_the_cashier_refuses_a_trade_paid_already(provider, gateway, receiver):
    payment, _ = paid(provider, gateway, receiver)
    assert "ACQ.TRADE_HAS_SUCCESS" in open_cashier(provider, payment, receiver.url).text


def test_a_provider_with_a_key_alipay_does_not_know_is_refused(settings, gateway, other_keys, tmp_path):
    from support.alipay import a_payment as payment_of

    from gmall_payment.plugins.alipay.config import AlipayConfig

    key_file = tmp_path / "stranger.pem"
    key_file.write_bytes(rsa2.private_pem(other_keys[0]))
    stranger = AlipayProvider(
        AlipayConfig.from_settings(
            {**settings, "ALIPAY_GATEWAY_URL": gateway.url, "ALIPAY_APP_PRIVATE_KEY_FILE": str(key_file)}
        )
    )
    with pytest.raises(ProviderError) as refused:
        stranger.query(payment_of())
    assert refused.value.sub_code == "isv.invalid-signature"
    page = open_cashier(stranger, payment_of(), "http://127.0.0.1:9/notify/alipay")
    assert page.status_code == 400 and "isv.invalid-signature" in page.text
    assert gateway.ledger.get("202411110001") is None
