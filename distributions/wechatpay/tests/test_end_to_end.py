"""End to end over real HTTP on loopback: the shop serves the offline gateway, a browser pays
by the QR page and the phone's page, the signed, encrypted notify pays the order once."""

import re

import pytest
import requests
from support.shop import (
    notify_log,
    open_order,
    served_shop,
    shop_state,
    snapshot,
    wait_until_fulfilled,
)
from wechat_support import SETTINGS, fulfilled_once, gateway_of, qr_page, scan_and_pay

TOKEN = "operator-token-for-tests-0123456789"  # throw-away


@pytest.mark.parametrize("scenario", ["normal", "duplicate"])
def test_qr_page_scan_pay_notify_pays_the_order_once(tmp_path, scenario):
    with served_shop(tmp_path, **SETTINGS, OPERATOR_TOKEN=TOKEN) as (app, base_url):
        before = open_order(app)
        order_sn = before["order_sn"]
        browser, page = qr_page(base_url, order_sn)
        assert '<script src="/static/checkout_qr.js">' in page.text  # its polling, the shop's own file
        assert 'data-code-url="weixin://wxpay/bizpayurl?pr=' in page.text
        done = scan_and_pay(browser, base_url, page, scenario=scenario)
        assert done.status_code == 200 and 'data-state="SUCCESS"' in done.text

        view = wait_until_fulfilled(browser, base_url, order_sn)
        gateway = gateway_of(app)
        assert gateway.notifier.join(10)
        app.extensions["gmall"].bus.join()
        trade = gateway.trades[order_sn]
        [payment] = view["payments"]
        assert (payment["provider"], payment["status"], payment["trade_no"]) == (
            "wechatpay",
            "paid",
            trade.transaction_id,
        )
        assert trade.total == int(before["amount"].replace(".", ""))  # fen, exactly
        log = notify_log(app)
        assert [e.outcome for e in log] == (["paid", "duplicate"] if scenario == "duplicate" else ["paid"])
        assert all(e.verified and e.accepted and e.notify_id and e.raw.startswith('{"id":') for e in log)
        assert [status for _, status, _ in gateway.notifier.attempts] == [204] * len(log)
        assert snapshot(app)[2] == 2  # payment.succeeded and order.paid, once each
        assert shop_state(app, before) == fulfilled_once(before)

        # the storefront and the operators see it like any other provider's
        orders_page = browser.get(f"{base_url}/orders").text  # my orders, as a shopper reads it
        assert re.search(r'微信支付: <span class="badge [^"]*">已支付</span>', orders_page), (
            "WeChat payment not shown paid"
        )
        operators = requests.get(
            f"{base_url}/api/operator/payments",
            headers={"Authorization": f"Bearer {TOKEN}"},
            params={"order_sn": order_sn},
        ).json()["payments"]
        assert [(p["provider"], p["status"], p["trade_no"]) for p in operators] == [
            ("wechatpay", "paid", trade.transaction_id)
        ]
        shown = requests.get(
            f"{base_url}/api/operator/payments/{operators[0]['id']}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ).json()
        assert shown["provider"] == "wechatpay"
        assert [(n["source"], n["outcome"], n["notify_id"]) for n in shown["notifications"]] == [
            ("notify", e.outcome, e.notify_id) for e in log
        ]


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [("tampered", "bad_signature"), ("wrong_key", "bad_signature"), ("stale", "stale_timestamp")],
)
def test_a_spoilt_notify_is_refused_on_each_retry_and_the_query_tells_the_truth(tmp_path, scenario, reason):
    with served_shop(tmp_path, **SETTINGS) as (app, base_url):
        before = open_order(app)
        order_sn = before["order_sn"]
        browser, page = qr_page(base_url, order_sn)
        scan_and_pay(browser, base_url, page, scenario=scenario)
        gateway = gateway_of(app)
        assert gateway.notifier.join(15)
        statuses = [status for _, status, _ in gateway.notifier.attempts]
        assert statuses == [400] * len(
            gateway.config.schedule
        )  # WeChat Pay's whole series, every one refused
        log = notify_log(app)
        assert {(e.outcome, e.accepted) for e in log} == {(reason, False)} and len(log) == len(statuses)
        assert snapshot(app)[2] == 0 and shop_state(app, before) == (before["member"], before["sku"])

        assert app.test_cli_runner().invoke(args=["reconcile"]).exit_code == 0
        wait_until_fulfilled(browser, base_url, order_sn)
        assert notify_log(app)[-1].source == "query" and notify_log(app)[-1].outcome == "paid"
