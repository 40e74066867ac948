"""The offline gateway as the shop meets it, over real HTTP: the phone's cancel button, WeChat
Pay's refusals of an order paid or closed (code and error body), its notify retry series (which
reconciliation's queries follow), and the description it is given from the order's items."""

from datetime import datetime, timedelta
from html import escape

import pytest
from gmall_payment_wechatpay.config import GatewayConfig, WechatPayConfig
from gmall_payment_wechatpay.provider import NATIVE, WechatPayProvider
from sqlalchemy import select, update
from support.shop import member_orders, notify_log, open_order, wait_until_fulfilled
from wechat_support import checkout_urls, gateway_of, payment_of, qr_page, scan_and_pay, scan_page

from gmall_payment.adapters.sql.models import OrderItem, db
from gmall_payment.core.errors import ProviderError
from gmall_payment.core.model import TradeStatus
from gmall_payment.core.reconciliation import Reconciliation

MINUTE, HOUR = 60, 3600
#: WeChat Pay's notify retries, as its documentation writes them: 15s/15s/30s/3m/10m/20m/30m/
#: 30m/30m/60m/3h/3h/3h/6h/6h, 24h4m in all.
SERIES = (15, 15, 30, 3 * MINUTE, 10 * MINUTE, 20 * MINUTE, 30 * MINUTE, 30 * MINUTE, 30 * MINUTE)
SERIES += (HOUR, 3 * HOUR, 3 * HOUR, 3 * HOUR, 6 * HOUR, 6 * HOUR)


def wechatpay(app):
    return app.extensions["gmall"].providers.get("wechatpay")


def test_cancel_on_the_phone_pays_nothing_and_the_code_can_still_be_paid(live):
    app, base_url = live
    order_sn = open_order(app)["order_sn"]
    browser, page = qr_page(base_url, order_sn)

    cancelled = scan_and_pay(browser, base_url, page, action="cancel")

    assert cancelled.status_code == 200 and 'data-state="NOTPAY"' in cancelled.text
    assert "已取消支付" in cancelled.text
    gateway = gateway_of(app)
    assert gateway.trades[order_sn].trade_state == "NOTPAY" and gateway.notifier.attempts == []
    assert notify_log(app) == [] and payment_of(app, order_sn).payment_status == 0
    assert wechatpay(app).query(payment_of(app, order_sn)).status is TradeStatus.PENDING
    paid = scan_and_pay(browser, base_url, page)  # the shopper scans again, and pays
    assert 'data-state="SUCCESS"' in paid.text
    wait_until_fulfilled(browser, base_url, order_sn)
    assert [e.outcome for e in notify_log(app)] == ["paid"]


def test_an_order_paid_is_refused_as_orderpaid_and_one_closed_as_order_closed(live):
    app, base_url = live
    provider = wechatpay(app)
    paid_sn, closed_sn = member_orders(app)[:2]
    browser, page = qr_page(base_url, paid_sn)
    scan_and_pay(browser, base_url, page)
    wait_until_fulfilled(browser, base_url, paid_sn)
    qr_page(base_url, closed_sn, browser)
    provider.close(payment_of(app, closed_sn))

    def order_again(order_sn):
        body = provider.order_body(payment_of(app, order_sn), checkout_urls(base_url))
        answer = provider.client.call("POST", NATIVE, body)  # its signature verified, as every answer's
        return answer.status, answer.body

    assert order_again(paid_sn) == (400, {"code": "ORDERPAID", "message": "该订单已支付"})
    assert order_again(closed_sn) == (400, {"code": "ORDER_CLOSED", "message": "订单已关闭"})
    for refused_request in (
        lambda: provider.checkout(payment_of(app, paid_sn), checkout_urls(base_url)),
        lambda: provider.close(payment_of(app, paid_sn)),
    ):
        with pytest.raises(ProviderError) as refused:
            refused_request()
        assert (refused.value.code, refused.value.retryable) == ("ORDERPAID", False)


def test_the_notify_retries_and_reconciliations_queries_follow_wechat_pays_series(tmp_path):
    assert sum(SERIES) == 24 * HOUR + 4 * MINUTE
    settings = {"INSTANCE_PATH": str(tmp_path)}
    for speedup in (1, 60):  # 1: WeChat Pay's own; the setting compresses it for the demo and tests
        config = GatewayConfig.from_settings({**settings, "WECHATPAY_SANDBOX_NOTIFY_SPEEDUP": speedup})
        assert config.schedule == tuple(wait / speedup for wait in (0, *SERIES))  # at once, then the retries
    provider = WechatPayProvider(WechatPayConfig.from_settings(settings))
    assert provider.query_schedule == SERIES
    now = datetime(2024, 11, 11, 20, 0)
    asked = [Reconciliation.next_query_time(provider, n, now) for n in range(1, len(SERIES) + 2)]
    assert asked == [now + timedelta(seconds=wait) for wait in SERIES] + [None]


def item_names(app, order_sn):
    with app.app_context():
        return list(
            db.session.scalars(
                select(OrderItem.sku_name).where(OrderItem.order_sn == order_sn).order_by(OrderItem.id)
            )
        )


def test_the_description_is_made_of_the_orders_items(live):
    app, base_url = live
    order_sn = open_order(app)["order_sn"]
    browser, page = qr_page(base_url, order_sn)
    description = gateway_of(app).trades[order_sn].description
    assert description == "谷粒商城-" + "、".join(item_names(app, order_sn))
    assert f'<dd id="description">{escape(description)}</dd>' in scan_page(browser, base_url, page).text


def test_a_long_description_is_cut_to_wechat_pays_127_bytes(live):
    app, base_url = live
    order_sn = open_order(app)["order_sn"]
    with app.app_context():
        db.session.execute(
            update(OrderItem)
            .where(OrderItem.order_sn == order_sn)
            .values(
                sku_name="华为 HUAWEI Mate 60 Pro 雅丹黑 12GB+512GB 卫星通话 超可靠玄武架构 全焦段超清影像 鸿蒙智能旗舰手机"
            )
        )
        db.session.commit()
    qr_page(base_url, order_sn)  # the gateway takes 1 to 127 bytes only

    description = gateway_of(app).trades[order_sn].description

    whole = "谷粒商城-" + "、".join(item_names(app, order_sn))
    assert len(whole.encode()) > 127 and whole.startswith(description)
    assert 127 - 3 < len(description.encode()) <= 127  # cut before the character that does not fit
