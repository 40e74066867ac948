"""The simulated provider site: trades the shop opens, the cashier page, its actions, and
notifications over real HTTP."""

import time
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from werkzeug.test import Client

from gmall_payment.core.errors import ProviderError
from gmall_payment.core.model import Payment, TradeStatus
from gmall_payment.plugins import mockpay
from gmall_payment.plugins.mockpay.provider import MockpayProvider
from gmall_payment.plugins.mockpay.sandbox import make_sandbox_app
from gmall_payment.ports.plugins import ProviderRegistry, make_plugin_manager
from gmall_payment.ports.provider import CheckoutUrls

RETURN_URL = "http://shop.test/pay/return?from=mockpay"
SN = "202411260001"


@pytest.fixture
def sandbox(settings):
    return make_sandbox_app(settings)


def open_trade(settings, sandbox, receiver, subject="谷粒商城-<b>手机</b>", amount="12.30", **urls):
    """Check out as the shop does: the provider opens the trade at the sandbox mounted beside it."""
    provider = MockpayProvider(settings)
    provider.use_mounted_sandbox(sandbox)
    payment = Payment(SN, "mockpay", Decimal(amount), subject, datetime(2024, 11, 26))
    urls = {"notify_url": receiver.url, "return_url": RETURN_URL, **urls}
    return provider.checkout(payment, CheckoutUrls(**urls))


def act(sandbox, action="pay", scenario="normal", out_trade_no=SN):
    return Client(sandbox).post(
        "/cashier", data={"out_trade_no": out_trade_no, "action": action, "scenario": scenario}
    )


@pytest.fixture
def opened(settings, sandbox, receiver):
    """The sandbox with trade SN opened by the shop, notifying ``receiver``."""
    open_trade(settings, sandbox, receiver)
    return sandbox


def returned_to(response):
    """The shop page the shopper is sent back to, and its query."""
    assert response.status_code == 303
    url = urlsplit(response.headers["Location"])
    return f"{url.scheme}://{url.netloc}{url.path}", {
        key: values[0] for key, values in parse_qs(url.query).items()
    }


def test_cashier_page_shows_the_trade_escaped(opened):
    response = Client(opened).get(f"/cashier?out_trade_no={SN}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "12.30" in page
    assert "谷粒商城-&lt;b&gt;手机&lt;/b&gt;" in page
    assert "<b>手机" not in page
    assert 'value="pay"' in page and 'value="lost"' in page
    assert "notify_url" not in page and "return_url" not in page  # the form carries the reference only
    assert Client(opened).head(f"/cashier?out_trade_no={SN}").status_code == 200


def test_cashier_form_posts_back_under_the_mount_prefix(opened):
    response = Client(opened).get(
        f"/mockpay/cashier?out_trade_no={SN}",
        environ_overrides={
            "SCRIPT_NAME": "/mockpay",
            "PATH_INFO": "/cashier",
        },
    )
    assert 'action="/mockpay/cashier"' in response.get_data(as_text=True)


def test_cashier_refuses_a_trade_the_shop_did_not_open(sandbox):
    for response in (
        Client(sandbox).get(f"/cashier?out_trade_no={SN}"),
        act(sandbox),
        Client(sandbox).get("/cashier"),
    ):
        assert response.status_code == 404 and "does not exist" in response.get_data(as_text=True)
    assert sandbox.ledger.trade(SN) is None and sandbox.notifier.attempts == []


def create_params(receiver, **changes):
    return {
        "method": "mockpay.trade.create",
        "out_trade_no": SN,
        "total_amount": "12.30",
        "subject": "谷粒商城-手机",
        "notify_url": receiver.url,
        "return_url": RETURN_URL,
        **changes,
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"notify_url": "/notify/mockpay"}, "notify_url must be an absolute"),
        ({"return_url": "javascript:alert(1)"}, "return_url must be an absolute"),
        ({"total_amount": "1.005"}, "more than two decimal places"),
        ({"app_id": "someone-else"}, "unknown app_id"),
        ({"subject": ""}, "missing subject"),
        ({"time_expire": "tomorrow"}, "tomorrow"),
    ],
)
def test_opening_refuses_what_the_sandbox_cannot_serve(sandbox, receiver, signed_request, changes, message):
    answer = sandbox.answer(signed_request(create_params(receiver, **changes)))
    assert answer["code"] != "10000" and message in answer["sub_msg"]
    assert sandbox.ledger.trade(SN) is None


def test_with_public_url_the_trade_notifies_and_returns_to_the_shop_only(settings, receiver, signed_request):
    sandbox = make_sandbox_app({**settings, "PUBLIC_URL": "http://shop.test/"})
    for name in ("notify_url", "return_url"):
        for url in ("https://evil.example/phish", "http://shop.test.evil.example/x", "https://shop.test/x"):
            shops = {"notify_url": RETURN_URL, "return_url": RETURN_URL}
            answer = sandbox.answer(signed_request(create_params(receiver, **{**shops, name: url})))
            assert (answer["sub_code"], "PUBLIC_URL" in answer["sub_msg"]) == ("ACQ.INVALID_PARAMETER", True)
    assert sandbox.ledger.trade(SN) is None
    answer = sandbox.answer(
        signed_request(
            create_params(receiver, notify_url="http://shop.test/notify/mockpay", return_url=RETURN_URL)
        )
    )
    assert (
        answer["code"] == "10000" and sandbox.ledger.trade(SN).notify_url == "http://shop.test/notify/mockpay"
    )


def test_opening_again_keeps_the_trade_and_takes_the_new_urls(settings, opened, receiver):
    first = opened.ledger.trade(SN)
    open_trade(settings, opened, receiver, return_url="http://shop.test/again")
    assert opened.ledger.trade(SN).trade_no == first.trade_no
    assert opened.ledger.trade(SN).return_url == "http://shop.test/again"
    with pytest.raises(ProviderError, match="was opened for 12.30"):
        open_trade(settings, opened, receiver, amount="0.01")


def test_pay_notifies_with_a_signature_the_provider_accepts(settings, opened, receiver):
    receiver.failures = 2
    response = act(opened)

    assert returned_to(response) == (
        RETURN_URL.split("?")[0],
        {"from": "mockpay", "out_trade_no": SN},
    )
    assert opened.notifier.join(5)
    assert [(a.status, a.body) for a in opened.notifier.attempts] == [
        (200, "failure"),
        (200, "failure"),
        (200, "success"),
    ]
    assert len(receiver.received) == 3
    assert receiver.received[0] == receiver.received[2]
    notification = MockpayProvider(settings).parse_notification(receiver.received[-1])
    paid = opened.ledger.trade(SN)
    assert notification.status is TradeStatus.PAID
    assert notification.total_amount == paid.total_amount == Decimal("12.30")
    assert notification.trade_no == paid.trade_no
    assert receiver.received[-1]["sign_type"] == "RSA2"


def test_pay_stops_retrying_after_the_schedule(opened, receiver):
    receiver.failures = 99
    act(opened)
    assert opened.notifier.join(5)
    assert len(opened.notifier.attempts) == len(receiver.received) == 3  # FAST_SCHEDULE has three waits
    assert not any(attempt.acknowledged for attempt in opened.notifier.attempts)


def test_shop_error_is_recorded_and_retried(opened, receiver):
    receiver.failures, receiver.failure_status = 1, 500
    act(opened)
    assert opened.notifier.join(5)
    assert [(a.status, a.body) for a in opened.notifier.attempts] == [(500, "failure"), (200, "success")]


def test_unreachable_shop_is_recorded_and_retried(settings, receiver):
    sandbox = make_sandbox_app({**settings, "MOCKPAY_NOTIFY_SCHEDULE": "0,0.01"})
    open_trade(
        settings, sandbox, receiver, notify_url="http://127.0.0.1:9/notify"
    )  # discard port: nothing listens
    act(sandbox)
    assert sandbox.notifier.join(5)
    assert [attempt.status for attempt in sandbox.notifier.attempts] == [None, None]
    assert receiver.received == []


def test_duplicate_delivers_the_same_notification_twice(opened, receiver):
    act(opened, scenario="duplicate")
    assert opened.notifier.join(5)
    assert len(receiver.received) == 2
    assert receiver.received[0] == receiver.received[1]
    assert len({attempt.notify_id for attempt in opened.notifier.attempts}) == 1


def test_late_redirects_at_once_and_notifies_later(settings, receiver):
    sandbox = make_sandbox_app({**settings, "MOCKPAY_LATE_SECONDS": "0.5"})
    open_trade(settings, sandbox, receiver)
    started = time.monotonic()
    response = act(sandbox, scenario="late")
    assert response.status_code == 303
    assert sandbox.notifier.attempts == []
    assert sandbox.notifier.join(5)
    assert time.monotonic() - started >= 0.5
    assert len(receiver.received) == 1


def test_lost_takes_the_money_but_never_notifies(opened, receiver):
    response = act(opened, scenario="lost")
    assert response.status_code == 303
    assert opened.notifier.join(5)  # would wait for any delivery that had been started
    assert receiver.received == [] and opened.notifier.attempts == []
    assert opened.ledger.trade(SN).trade_status == "TRADE_SUCCESS"


def test_fail_takes_nothing_and_sends_the_shopper_back(opened, receiver):
    assert returned_to(act(opened, action="fail"))[1] == {
        "from": "mockpay",
        "out_trade_no": SN,
        "failed": "1",  # what the shopper saw, for the shop to say; never "paid"
    }
    assert opened.notifier.join(5)
    assert receiver.received == [] and opened.notifier.attempts == []
    assert (
        opened.ledger.trade(SN).trade_status == "WAIT_BUYER_PAY"
        and opened.ledger.trade(SN).gmt_payment is None
    )


def test_cancel_says_so_on_the_way_back(opened, receiver):
    assert returned_to(act(opened, action="cancel"))[1]["cancelled"] == "1"
    assert opened.notifier.join(5)
    assert receiver.received == [] and opened.ledger.trade(SN).trade_status == "WAIT_BUYER_PAY"


def test_a_trade_is_paid_once(opened, receiver):
    assert act(opened).status_code == 303
    again = act(opened)
    assert again.status_code == 409
    assert opened.notifier.join(5)
    assert len(receiver.received) == 1


def test_a_trade_past_its_time_expire_is_closed_and_cannot_be_paid(settings, sandbox, receiver):
    open_trade(settings, sandbox, receiver)
    assert sandbox.ledger.trade(SN).time_expire is None  # no expiry given: none
    provider = MockpayProvider(settings)
    provider.use_mounted_sandbox(sandbox)
    deadline = datetime.now().replace(microsecond=0) + timedelta(minutes=5)
    payment = Payment(SN, "mockpay", Decimal("12.30"), "谷粒商城-<b>手机</b>", datetime(2024, 11, 26))
    provider.checkout(payment, CheckoutUrls(receiver.url, RETURN_URL, expires_at=deadline))
    assert sandbox.ledger.trade(SN).time_expire == deadline
    assert Client(sandbox).get(f"/cashier?out_trade_no={SN}").status_code == 200

    sandbox.clock = lambda: deadline
    refused = act(sandbox)

    assert refused.status_code == 409 and "time_expire passed" in refused.get_data(as_text=True)
    assert sandbox.ledger.trade(SN).trade_status == "TRADE_CLOSED"
    assert sandbox.notifier.join(5) and receiver.received == []


def test_unknown_action_or_scenario_is_refused(opened):
    assert act(opened, action="steal").status_code == 400
    assert act(opened, scenario="chaos").status_code == 400
    assert opened.ledger.trade(SN).trade_status == "WAIT_BUYER_PAY"


def test_hooks_share_generated_key_pairs_and_create_nothing_up_front(tmp_path, receiver):
    """The provider and the sandbox of one process, from the same settings, agree on keys, and
    the provider opens its trades at the sandbox mounted beside it."""
    settings = {"INSTANCE_PATH": str(tmp_path), "MOCKPAY_NOTIFY_SCHEDULE": "0"}
    pm = make_plugin_manager({"mockpay": mockpay}, load_entrypoints=False)
    registry = ProviderRegistry.from_plugins(pm, settings)
    (apps,) = pm.hook.gmall_payment_sandbox_apps(settings=settings, providers=registry)
    assert registry.names() == ["mockpay"] and list(apps) == ["/mockpay"]
    assert list(tmp_path.iterdir()) == []

    payment = Payment(SN, "mockpay", Decimal("12.30"), "谷粒商城-手机", datetime(2024, 11, 26))
    registry.get("mockpay").checkout(payment, CheckoutUrls(receiver.url, RETURN_URL))
    act(apps["/mockpay"])
    assert apps["/mockpay"].notifier.join(5)
    assert registry.get("mockpay").parse_notification(receiver.received[0]).status is TradeStatus.PAID
    assert sorted(path.name for path in (tmp_path / "mockpay").iterdir()) == [
        "merchant_private.pem",
        "merchant_public.pem",
        "mockpay_private.pem",
        "mockpay_public.pem",
        "trades.sqlite3",  # the sandbox's trades, kept for the next start
    ]
