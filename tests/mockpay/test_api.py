"""mockpay's API over real HTTP: the provider opens, queries, refunds and closes trades at the
sandbox, every request signed with the merchant key."""

from datetime import datetime
from decimal import Decimal

import pytest
import requests
from support.servers import serving

from gmall_payment.core.errors import ProviderError, TradeNotFound
from gmall_payment.core.model import Payment, TradeStatus
from gmall_payment.plugins import rsa2
from gmall_payment.plugins.mockpay.provider import MockpayProvider
from gmall_payment.plugins.mockpay.sandbox import make_sandbox_app
from gmall_payment.ports.provider import CheckoutUrls

SN = "202411260001"


@pytest.fixture
def served(settings):
    """The sandbox on a loopback server, and a provider configured to call its API."""
    sandbox = make_sandbox_app(settings)
    with serving(sandbox) as base_url:
        sandbox.base_url = base_url
        yield sandbox, MockpayProvider({**settings, "MOCKPAY_API_URL": f"{base_url}/api"})
    sandbox.notifier.join(5)


def payment(amount="12.30") -> Payment:
    return Payment(SN, "mockpay", Decimal(amount), "谷粒商城-手机", datetime(2024, 11, 26))


def check_out(provider, receiver):
    """The shop's checkout: it opens the trade at the sandbox (a signed request over HTTP)."""
    return provider.checkout(payment(), CheckoutUrls(receiver.url, "http://shop.test/pay/return"))


def cashier(sandbox, action=None, scenario="lost"):
    """Show the cashier, or press one of its buttons."""
    if action is None:
        return requests.get(f"{sandbox.base_url}/cashier", params={"out_trade_no": SN})
    return requests.post(
        f"{sandbox.base_url}/cashier",
        data={"out_trade_no": SN, "action": action, "scenario": scenario},
        allow_redirects=False,
    )


def test_query_follows_the_trade_from_open_to_paid(served, receiver):
    sandbox, provider = served
    with pytest.raises(TradeNotFound) as unknown:
        provider.query(payment())
    assert (unknown.value.code, unknown.value.sub_code) == ("40004", "ACQ.TRADE_NOT_EXIST")

    check_out(provider, receiver)
    assert cashier(sandbox).status_code == 200
    waiting = provider.query(payment())
    assert (waiting.status, waiting.total_amount, waiting.notify_id) == (
        TradeStatus.PENDING,
        Decimal("12.30"),
        None,
    )

    assert cashier(sandbox, "pay", "lost").status_code == 303
    paid = provider.query(payment())
    trade = sandbox.ledger.trade(SN)
    assert (paid.status, paid.trade_no, paid.out_trade_no) == (TradeStatus.PAID, trade.trade_no, SN)
    assert trade.trade_no == waiting.trade_no  # the trade opened at checkout is the one paid
    assert receiver.received == []  # the notify was lost: only the query tells


def test_refunds_are_idempotent_by_request_number_and_never_exceed_the_payment(served, receiver):
    sandbox, provider = served
    check_out(provider, receiver)
    cashier(sandbox, "pay", "lost")

    first = provider.refund(payment(), Decimal("2.30"), "R1")
    again = provider.refund(payment(), Decimal("2.30"), "R1")
    with pytest.raises(ProviderError) as discordant:
        provider.refund(payment(), Decimal("2.31"), "R1")
    with pytest.raises(ProviderError) as excessive:
        provider.refund(payment(), Decimal("10.01"), "R2")
    rest = provider.refund(payment(), Decimal("10.00"), "R2")

    assert [(r.fund_change, r.refund_amount, r.refunded_total) for r in (first, again, rest)] == [
        (True, Decimal("2.30"), Decimal("2.30")),
        (False, Decimal("2.30"), Decimal("2.30")),
        (True, Decimal("10.00"), Decimal("12.30")),
    ]
    assert discordant.value.sub_code == "ACQ.DISCORDANT_REPEAT_REQUEST"
    assert excessive.value.sub_code == "ACQ.REASON_TRADE_REFUND_FEE_ERR"
    assert provider.query(payment()).status is TradeStatus.CLOSED  # all of it refunded
    assert sandbox.ledger.trade(SN).refunded == Decimal("12.30")


def test_an_unpaid_trade_cannot_be_refunded(served, receiver):
    sandbox, provider = served
    with pytest.raises(TradeNotFound):
        provider.refund(payment(), Decimal("1.00"), "R1")
    check_out(provider, receiver)
    with pytest.raises(ProviderError) as unpaid:
        provider.refund(payment(), Decimal("1.00"), "R1")
    assert unpaid.value.sub_code == "ACQ.TRADE_STATUS_ERROR"


def test_a_closed_trade_cannot_be_paid_and_a_paid_one_cannot_be_closed(served, receiver):
    sandbox, provider = served
    with pytest.raises(TradeNotFound):
        provider.close(payment())
    check_out(provider, receiver)
    provider.close(payment())
    assert provider.query(payment()).status is TradeStatus.CLOSED
    refused = cashier(sandbox, "pay", "normal")
    assert refused.status_code == 409 and "closed" in refused.text
    with pytest.raises(ProviderError) as closed_again:
        provider.close(payment())
    assert closed_again.value.sub_code == "ACQ.TRADE_STATUS_ERROR"


def test_an_answer_signed_with_another_key_is_refused(settings, other_key_pair, receiver, tmp_path):
    impostor_settings = {**settings}
    for name, key in (
        ("MOCKPAY_PRIVATE_KEY_FILE", rsa2.private_pem(other_key_pair[0])),
        ("MOCKPAY_PUBLIC_KEY_FILE", rsa2.public_pem(other_key_pair[1])),
    ):
        (tmp_path / name).write_bytes(key)
        impostor_settings[name] = str(tmp_path / name)
    impostor = make_sandbox_app(impostor_settings)
    with serving(impostor) as base_url:
        provider = MockpayProvider({**settings, "MOCKPAY_API_URL": f"{base_url}/api"})
        with pytest.raises(ProviderError, match="does not verify"):
            provider.query(payment())


def test_an_unreachable_sandbox_is_a_provider_error(settings):
    provider = MockpayProvider(
        {**settings, "MOCKPAY_API_URL": "http://127.0.0.1:9/api", "MOCKPAY_TIMEOUT": 2}
    )
    with pytest.raises(ProviderError) as unreachable:
        provider.query(payment())
    assert unreachable.value.sub_code == "" and "failed" in str(unreachable.value)


def test_the_api_refuses_other_apps_and_methods(served):
    sandbox, _ = served
    for form, sub_code in (
        ({"app_id": "someone-else", "method": "mockpay.trade.query"}, "isv.invalid-app-id"),
        ({"app_id": "mockpay-sandbox", "method": "mockpay.trade.pay"}, "isv.invalid-method"),
    ):
        answer = requests.post(f"{sandbox.base_url}/api", data={**form, "out_trade_no": SN}).json()
        assert (answer["code"], answer["sub_code"]) == ("40004", sub_code)


def test_a_request_signed_long_ago_or_by_another_key_changes_nothing(
    served, receiver, signed_request, other_key_pair
):
    sandbox, provider = served
    check_out(provider, receiver)
    close = {"method": "mockpay.trade.close", "out_trade_no": SN}
    stale = signed_request({**close, "timestamp": "2024-11-26 10:00:00"})
    forged = signed_request(close)
    forged["sign"] = rsa2.sign(forged, other_key_pair[0], rsa2.REQUEST_UNSIGNED_FIELDS)
    tampered = {**signed_request(close), "out_trade_no": "2024112600099"}
    answers = [
        requests.post(f"{sandbox.base_url}/api", data=form).json() for form in (stale, forged, tampered)
    ]
    assert [(a["code"], a["sub_code"]) for a in answers] == [
        ("40002", "isv.invalid-timestamp"),
        ("40002", "isv.invalid-signature"),
        ("40002", "isv.invalid-signature"),
    ]
    assert all(rsa2.verify(a, a["sign"], provider.config.public_key) for a in answers)  # signed answers
    assert sandbox.ledger.trade(SN).trade_status == "WAIT_BUYER_PAY"
    assert requests.post(f"{sandbox.base_url}/api", data=signed_request(close)).json()["code"] == "10000"
