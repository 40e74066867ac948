"""The shop side of mockpay: checkout (the trade opened, the cashier URL), notification parsing,
acknowledgement, settings."""

import json
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from gmall_payment.core.errors import NotificationRejected, ProviderError
from gmall_payment.core.model import Payment, TradeStatus
from gmall_payment.plugins import rsa2
from gmall_payment.plugins.mockpay.provider import MockpayProvider
from gmall_payment.plugins.mockpay.sandbox import make_sandbox_app
from gmall_payment.ports.provider import CheckoutUrls

URLS = CheckoutUrls(notify_url="http://shop.test/notify/mockpay", return_url="http://shop.test/pay/return")


def notify_params(private_key, **changes):
    """A notification as the sandbox sends it, signed after ``changes`` (None drops a field)."""
    params = {
        "app_id": "mockpay-sandbox",
        "out_trade_no": "202411260001",
        "trade_no": "2024112600000000000000000001",
        "total_amount": "12.30",
        "trade_status": "TRADE_SUCCESS",
        "notify_id": "a1b2c3",
        "subject": "谷粒商城-手机",
        "sign_type": "RSA2",
    }
    params.update(changes)
    params = {key: value for key, value in params.items() if value is not None}
    params["sign"] = rsa2.sign(params, private_key)
    return params


@pytest.fixture
def provider(settings):
    return MockpayProvider(settings)


def rejection(provider, params):
    with pytest.raises(NotificationRejected) as caught:
        provider.parse_notification(params)
    return caught.value.reason


@pytest.fixture
def sandbox(settings, provider):
    """The sandbox mounted beside the provider: checkout opens its trades there."""
    sandbox = make_sandbox_app(settings)
    provider.use_mounted_sandbox(sandbox)
    return sandbox


def test_checkout_opens_the_trade_and_sends_the_shopper_with_its_reference_only(provider, sandbox):
    payment = Payment("202411260001", "mockpay", Decimal("12.3"), "谷粒商城-手机", datetime(2024, 11, 26))
    deadline = datetime(2024, 11, 26, 10, 30, 15, 999999)
    checkout = provider.checkout(payment, replace(URLS, expires_at=deadline))
    url = urlsplit(checkout.redirect_url)
    assert url.path == "/mockpay/cashier"
    assert {key: values[0] for key, values in parse_qs(url.query).items()} == {"out_trade_no": "202411260001"}
    trade = sandbox.ledger.trade("202411260001")
    assert (trade.total_amount, trade.subject, trade.notify_url, trade.return_url, trade.trade_status) == (
        Decimal("12.30"),
        "谷粒商城-手机",
        URLS.notify_url,
        URLS.return_url,
        "WAIT_BUYER_PAY",
    )
    assert trade.time_expire == deadline.replace(microsecond=0)  # never later than the order's close


def test_checkout_without_a_mounted_sandbox_calls_its_api_at_public_url(provider):
    payment = Payment("202411260001", "mockpay", Decimal("1.00"), "s", datetime(2024, 11, 26))
    with pytest.raises(ProviderError, match="set PUBLIC_URL"):
        provider.checkout(payment, URLS)


def test_checkout_refuses_a_relative_notify_url(provider):
    payment = Payment("202411260001", "mockpay", Decimal("1.00"), "s", datetime(2024, 11, 26))
    with pytest.raises(ValueError, match="notify_url must be an absolute"):
        provider.checkout(payment, CheckoutUrls(notify_url="/notify/mockpay", return_url=URLS.return_url))


def test_valid_notification_is_parsed(provider, key_pair):
    params = notify_params(key_pair[0])
    notification = provider.parse_notification(params)
    assert notification.out_trade_no == "202411260001"
    assert notification.total_amount == Decimal("12.30")
    assert isinstance(notification.total_amount, Decimal)
    assert notification.status is TradeStatus.PAID
    assert notification.trade_no == "2024112600000000000000000001"
    assert notification.notify_id == "a1b2c3"
    assert json.loads(notification.raw) == params


@pytest.mark.parametrize(
    ("trade_status", "status"),
    [
        ("TRADE_FINISHED", TradeStatus.PAID),
        ("TRADE_CLOSED", TradeStatus.CLOSED),
        ("WAIT_BUYER_PAY", TradeStatus.PENDING),
    ],
)
def test_trade_statuses_map_to_ours(provider, key_pair, trade_status, status):
    assert provider.parse_notification(notify_params(key_pair[0], trade_status=trade_status)).status is status


def test_tampered_notification_has_a_bad_signature(provider, key_pair):
    params = {**notify_params(key_pair[0]), "total_amount": "0.01"}
    assert rejection(provider, params) == "bad_signature"


def test_notification_signed_by_another_key_has_a_bad_signature(provider, other_key_pair):
    assert rejection(provider, notify_params(other_key_pair[0])) == "bad_signature"


def test_unsigned_notification_has_a_bad_signature(provider, key_pair):
    params = notify_params(key_pair[0])
    del params["sign"]
    assert rejection(provider, params) == "bad_signature"


def test_missing_field_is_malformed(provider, key_pair):
    assert rejection(provider, notify_params(key_pair[0], out_trade_no=None)) == "malformed"


def test_other_app_is_refused(provider, key_pair):
    assert rejection(provider, notify_params(key_pair[0], app_id="someone-else")) == "wrong_app"


@pytest.mark.parametrize("amount", ["12.345", "abc", "0", "-1.00", "NaN"])
def test_bad_amount_is_malformed(provider, key_pair, amount):
    assert rejection(provider, notify_params(key_pair[0], total_amount=amount)) == "malformed"


def test_unknown_status_is_refused(provider, key_pair):
    assert (
        rejection(provider, notify_params(key_pair[0], trade_status="TRADE_PENDING_REVIEW"))
        == "unknown_status"
    )


def test_acknowledgement_bodies(provider):
    accepted, refused = provider.acknowledge(True), provider.acknowledge(False)
    assert (accepted.body, refused.body) == ("success", "failure")
    assert accepted.content_type.startswith("text/plain")
    assert accepted.status == refused.status == 200


def test_server_calls_need_an_absolute_api_url(provider):
    """Mounted in the shop, the sandbox's API is the shop's own: PUBLIC_URL says where that is."""
    payment = Payment("202411260001", "mockpay", Decimal("1.00"), "s", datetime(2024, 11, 26))
    with pytest.raises(ProviderError, match="set PUBLIC_URL"):
        provider.query(payment)
    assert provider.config.api_url == "/mockpay/api"
    assert (
        MockpayProvider(
            {**provider.config.settings, "PUBLIC_URL": "http://shop.test:5000/"}
        ).config.server_api_url()
        == "http://shop.test:5000/mockpay/api"
    )
    assert (
        MockpayProvider(
            {**provider.config.settings, "MOCKPAY_CASHIER_URL": "https://pay.test/m/cashier?x=1"}
        ).config.server_api_url()
        == "https://pay.test/m/api"
    )


def test_reconciliation_follows_the_notify_retries(settings):
    assert MockpayProvider({**settings, "MOCKPAY_NOTIFY_SCHEDULE": "0,1,2,5"}).query_schedule == (
        1.0,
        2.0,
        5.0,
    )


def test_app_id_and_cashier_url_come_from_settings(settings, key_pair):
    settings = {
        **settings,
        "MOCKPAY_APP_ID": "shop-7",
        "MOCKPAY_CASHIER_URL": "https://pay.test/c?x=1",
        "MOCKPAY_API_URL": "/mockpay/api",
    }
    provider = MockpayProvider(settings)
    sandbox = make_sandbox_app(settings)
    provider.use_mounted_sandbox(sandbox)
    payment = Payment("202411260001", "mockpay", Decimal("1.00"), "s", datetime(2024, 11, 26))
    url = urlsplit(provider.checkout(payment, URLS).redirect_url)
    assert (url.netloc, url.path, parse_qs(url.query)["x"], parse_qs(url.query)["out_trade_no"]) == (
        "pay.test",
        "/c",
        ["1"],
        ["202411260001"],
    )
    assert sandbox.ledger.trade("202411260001").trade_status == "WAIT_BUYER_PAY"  # the app_id matched
    assert provider.parse_notification(notify_params(key_pair[0], app_id="shop-7")).status is TradeStatus.PAID


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"MOCKPAY_PUBLIC_KEY_FILE": ""}, "set both"),
        ({"MOCKPAY_MERCHANT_PRIVATE_KEY_FILE": ""}, "set both MOCKPAY_MERCHANT_PUBLIC_KEY_FILE"),
        ({"MOCKPAY_NOTIFY_SCHEDULE": "0,soon"}, "MOCKPAY_NOTIFY_SCHEDULE"),
        ({"MOCKPAY_NOTIFY_SCHEDULE": "0,-1"}, "MOCKPAY_NOTIFY_SCHEDULE"),
        ({"MOCKPAY_LATE_SECONDS": "later"}, "MOCKPAY_LATE_SECONDS"),
    ],
)
def test_unusable_settings_fail_when_building(settings, changes, message):
    with pytest.raises(ValueError, match=message):
        MockpayProvider({**settings, **changes})


def test_generated_keys_need_an_instance_path():
    with pytest.raises(ValueError, match="INSTANCE_PATH"):
        MockpayProvider({})


def test_mismatched_key_files_are_refused(settings, tmp_path, other_key_pair):
    other_public = tmp_path / "other_public.pem"
    other_public.write_bytes(rsa2.public_pem(other_key_pair[1]))
    provider = MockpayProvider({**settings, "MOCKPAY_PUBLIC_KEY_FILE": str(other_public)})
    with pytest.raises(ValueError, match="does not match"):
        provider.parse_notification({})
