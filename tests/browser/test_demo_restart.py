"""The README's demo in Chromium, with no PUBLIC_URL: a shopper pays with mockpay and with 支付宝
(its notify lost); the shop restarts on the same instance folder; an operator refunds the
mockpay payment through the operator page and reconciliation finds the Alipay money."""

import re

from support.browser import log_in
from support.servers import serving
from support.shop import make_app, member_orders

from gmall_payment.core.model import PaymentStatus
from gmall_payment.webapp import create_app


def payment_of(app, order_sn, provider):
    with app.app_context():
        found = app.extensions["gmall"].payments.uow().payments.for_order(order_sn)
    return next(p for p in found if p.payment_type == provider)


def stop(app):
    app.extensions["gmall"].bus.close()
    for site in app.wsgi_app.mounts.values():
        site.notifier.join(10)


def test_pay_restart_refund_on_the_operator_page_and_reconcile(tmp_path, page):
    first = make_app(
        tmp_path, RECONCILE_GRACE_SECONDS=0, RECONCILE_SECONDS=0, ALIPAY_SANDBOX_NOTIFY_SPEEDUP=24000
    )
    assert not first.config["PUBLIC_URL"]
    mock_sn, ali_sn = member_orders(first)[:2]
    with serving(first) as base_url:
        log_in(page, base_url)
        page.goto(f"{base_url}/pay.html?orderToken={mock_sn}")
        page.get_by_role("button", name=re.compile("mockpay")).click()
        page.click("button[value=pay]")
        page.locator("#verdict").filter(has_text="支付成功").wait_for(timeout=15_000)
        page.goto(f"{base_url}/pay.html?orderToken={ali_sn}")
        page.get_by_role("button", name=re.compile("支付宝")).click()
        page.wait_for_url(re.compile(r".*/alipay-sandbox/gateway.do.*"))
        page.check("input[name=scenario][value=lost]")
        page.click("button[value=pay]")
        page.wait_for_url(re.compile(r".*/pay/return/alipay.*"))
    stop(first)
    assert payment_of(first, ali_sn, "alipay").payment_status is PaymentStatus.UNPAID  # its notify was lost

    again = create_app(
        {
            key: first.config[key]
            for key in (
                "TESTING",
                "INSTANCE_PATH",
                "DATABASE_URL",
                "SECRET_KEY",
                "RECONCILE_GRACE_SECONDS",
                "RECONCILE_SECONDS",
            )
        }
    )
    try:
        with serving(again) as base_url:  # another port: nothing of the first server's address remains
            paid = payment_of(again, mock_sn, "mockpay")
            page.goto(f"{base_url}/operator/payments/{paid.id}")
            page.fill("input[name=token]", again.config["OPERATOR_TOKEN"])
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(rf".*/operator/payments/{paid.id}$"))
            page.fill("#refund-form input[name=amount]", f"{paid.total_amount:.2f}")
            page.click("#refund-form button[type=submit]")
            page.locator(".notice-done").filter(has_text="succeeded").wait_for()
            assert "已退款" in page.locator("#status").inner_text()

            reconciled = again.test_cli_runner().invoke(args=["reconcile"])
            assert f"alipay {ali_sn} (order {ali_sn}): paid" in reconciled.output, reconciled.output
            alipay = payment_of(again, ali_sn, "alipay")
            page.goto(f"{base_url}/operator/payments/{alipay.id}")
            assert "已支付" in page.locator("#status").inner_text()
            assert "query" in page.locator("#notifications").inner_text()
    finally:
        stop(again)
