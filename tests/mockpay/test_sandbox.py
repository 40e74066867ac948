"""The simulated provider site: cashier page, actions, and notifications over real HTTP."""

import time
from decimal import Decimal
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from werkzeug.test import Client

from gmall_payment.core.model import TradeStatus
from gmall_payment.plugins import mockpay
from gmall_payment.plugins.mockpay.provider import MockpayProvider
from gmall_payment.plugins.mockpay.sandbox import make_sandbox_app
from gmall_payment.ports.providers import ProviderRegistry, make_plugin_manager

RETURN_URL = "http://shop.test/pay/return?from=mockpay"


def trade(receiver, **changes):
    """The cashier parameters the provider's checkout would send."""
    return {
        "app_id": "mockpay-sandbox",
        "out_trade_no": "202411260001",
        "total_amount": "12.30",
        "subject": "谷粒商城-<b>手机</b>",
        "notify_url": receiver.url,
        "return_url": RETURN_URL,
        **changes,
    }


@pytest.fixture
def sandbox(settings):
    return make_sandbox_app(settings)


def act(sandbox, receiver, action="pay", scenario="normal", **changes):
    return Client(sandbox).post(
        "/cashier", data={**trade(receiver, **changes), "action": action, "scenario": scenario}
    )


def returned_to(response):
    """The shop page the shopper is sent back to, and its query."""
    assert response.status_code == 303
    url = urlsplit(response.headers["Location"])
    return f"{url.scheme}://{url.netloc}{url.path}", {
        key: values[0] for key, values in parse_qs(url.query).items()
    }


def test_cashier_page_shows_the_trade_escaped(sandbox, receiver):
    response = Client(sandbox).get("/cashier?" + urlencode(trade(receiver)))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "12.30" in page
    assert "谷粒商城-&lt;b&gt;手机&lt;/b&gt;" in page
    assert "<b>手机" not in page
    assert 'value="pay"' in page and 'value="lost"' in page
    assert Client(sandbox).head("/cashier?" + urlencode(trade(receiver))).status_code == 200


def test_cashier_form_posts_back_under_the_mount_prefix(sandbox, receiver):
    response = Client(sandbox).get(
        "/mockpay/cashier?" + urlencode(trade(receiver)),
        environ_overrides={
            "SCRIPT_NAME": "/mockpay",
            "PATH_INFO": "/cashier",
        },
    )
    assert 'action="/mockpay/cashier"' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"notify_url": "/notify/mockpay"}, "notify_url must be an absolute"),
        ({"return_url": "javascript:alert(1)"}, "return_url must be an absolute"),
        ({"total_amount": "1.005"}, "more than two decimal places"),
        ({"app_id": "someone-else"}, "unknown app_id"),
        ({"subject": ""}, "missing subject"),
    ],
)
def test_cashier_refuses_what_it_cannot_serve(sandbox, receiver, changes, message):
    response = Client(sandbox).get("/cashier?" + urlencode(trade(receiver, **changes)))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_pay_notifies_with_a_signature_the_provider_accepts(settings, sandbox, receiver):
    receiver.failures = 2
    response = act(sandbox, receiver)

    assert returned_to(response) == (
        RETURN_URL.split("?")[0],
        {"from": "mockpay", "out_trade_no": "202411260001"},
    )
    assert sandbox.notifier.join(5)
    assert [(a.status, a.body) for a in sandbox.notifier.attempts] == [
        (200, "failure"),
        (200, "failure"),
        (200, "success"),
    ]
    assert len(receiver.received) == 3
    assert receiver.received[0] == receiver.received[2]
    notification = MockpayProvider(settings).parse_notification(receiver.received[-1])
    paid = sandbox.ledger.trade("202411260001")
    assert notification.status is TradeStatus.PAID
    assert notification.total_amount == paid.total_amount == Decimal("12.30")
    assert notification.trade_no == paid.trade_no
    assert receiver.received[-1]["sign_type"] == "RSA2"


def test_pay_stops_retrying_after_the_schedule(sandbox, receiver):
    receiver.failures = 99
    act(sandbox, receiver)
    assert sandbox.notifier.join(5)
    assert len(sandbox.notifier.attempts) == len(receiver.received) == 3  # FAST_SCHEDULE has three waits
    assert not any(attempt.acknowledged for attempt in sandbox.notifier.attempts)


def test_shop_error_is_recorded_and_retried(sandbox, receiver):
    receiver.failures, receiver.failure_status = 1, 500
    act(sandbox, receiver)
    assert sandbox.notifier.join(5)
    assert [(a.status, a.body) for a in sandbox.notifier.attempts] == [(500, "failure"), (200, "success")]


def test_unreachable_shop_is_recorded_and_retried(settings, receiver):
    sandbox = make_sandbox_app({**settings, "MOCKPAY_NOTIFY_SCHEDULE": "0,0.01"})
    act(sandbox, receiver, notify_url="http://127.0.0.1:9/notify")  # discard port: nothing listens
    assert sandbox.notifier.join(5)
    assert [attempt.status for attempt in sandbox.notifier.attempts] == [None, None]
    assert receiver.received == []


def test_duplicate_delivers_the_same_notification_twice(sandbox, receiver):
    act(sandbox, receiver, scenario="duplicate")
    assert sandbox.notifier.join(5)
    assert len(receiver.received) == 2
    assert receiver.received[0] == receiver.received[1]
    assert len({attempt.notify_id for attempt in sandbox.notifier.attempts}) == 1


def test_late_redirects_at_once_and_notifies_later(settings, receiver):
    sandbox = make_sandbox_app({**settings, "MOCKPAY_LATE_SECONDS": "0.5"})
    started = time.monotonic()
    response = act(sandbox, receiver, scenario="late")
    assert response.status_code == 303
    assert sandbox.notifier.attempts == []
    assert sandbox.notifier.join(5)
    assert time.monotonic() - started >= 0.5
    assert len(receiver.received) == 1


def test_lost_takes_the_money_but_never_notifies(sandbox, receiver):
    response = act(sandbox, receiver, scenario="lost")
    assert response.status_code == 303
    assert sandbox.notifier.join(5)  # would wait for any delivery that had been started
    assert receiver.received == [] and sandbox.notifier.attempts == []
    assert sandbox.ledger.trade("202411260001").trade_status == "TRADE_SUCCESS"


def test_fail_takes_nothing_and_sends_the_shopper_back(sandbox, receiver):
    assert returned_to(act(sandbox, receiver, action="fail"))[1] == {
        "from": "mockpay",
        "out_trade_no": "202411260001",
    }
    assert sandbox.notifier.join(5)
    assert receiver.received == [] and sandbox.notifier.attempts == []
    assert sandbox.ledger.trade("202411260001") is None


def test_cancel_says_so_on_the_way_back(sandbox, receiver):
    assert returned_to(act(sandbox, receiver, action="cancel"))[1]["cancelled"] == "1"
    assert sandbox.notifier.join(5)
    assert receiver.received == [] and sandbox.ledger.trade("202411260001") is None


def test_a_trade_is_paid_once(sandbox, receiver):
    assert act(sandbox, receiver).status_code == 303
    again = act(sandbox, receiver)
    assert again.status_code == 409
    assert sandbox.notifier.join(5)
    assert len(receiver.received) == 1


def test_unknown_action_or_scenario_is_refused(sandbox, receiver):
    assert act(sandbox, receiver, action="steal").status_code == 400
    assert act(sandbox, receiver, scenario="chaos").status_code == 400
    assert sandbox.ledger.trade("202411260001") is None


def test_hooks_share_a_generated_key_pair_and_create_nothing_up_front(tmp_path, receiver):
    """The provider and the sandbox of one process, from the same settings, agree on keys."""
    settings = {"INSTANCE_PATH": str(tmp_path), "MOCKPAY_NOTIFY_SCHEDULE": "0"}
    pm = make_plugin_manager({"mockpay": mockpay}, load_entrypoints=False)
    registry = ProviderRegistry.from_plugins(pm, settings)
    (apps,) = pm.hook.gmall_payment_sandbox_apps(settings=settings)
    assert registry.names() == ["mockpay"] and list(apps) == ["/mockpay"]
    assert list(tmp_path.iterdir()) == []

    act(apps["/mockpay"], receiver)
    assert apps["/mockpay"].notifier.join(5)
    assert registry.get("mockpay").parse_notification(receiver.received[0]).status is TradeStatus.PAID
    assert sorted(path.name for path in (tmp_path / "mockpay").iterdir()) == [
        "mockpay_private.pem",
        "mockpay_public.pem",
    ]
