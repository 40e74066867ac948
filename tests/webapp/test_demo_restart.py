"""The embedded demo on its defaults, with no PUBLIC_URL: paying, refunding and reconciling work,
also after the shop restarts on the same instance folder (its sandboxes keep their trades there,
and the shop calls them in process, from the server and from the CLI alike)."""

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select
from support.alipay import SPEEDUP, start_on_cashier
from support.alipay import pay_on_cashier as pay_alipay
from support.servers import serving
from support.shop import make_app, member_orders, pay_on_cashier, wait_until_fulfilled

from gmall_payment.adapters.sql.models import Order, db
from gmall_payment.core.model import PaymentStatus
from gmall_payment.plugins.alipay.client import beijing_now
from gmall_payment.webapp import create_app


def payment_of(app, order_sn):
    with app.app_context():
        [payment] = app.extensions["gmall"].payments.uow().payments.for_order(order_sn)
        return payment


def stop(app):
    app.extensions["gmall"].bus.close()
    for site in app.wsgi_app.mounts.values():
        site.notifier.join(10)


def test_pay_restart_then_refund_and_reconcile_a_lost_alipay_notify_without_public_url(tmp_path):
    first = make_app(
        tmp_path, RECONCILE_GRACE_SECONDS=0, RECONCILE_SECONDS=0, ALIPAY_SANDBOX_NOTIFY_SPEEDUP=SPEEDUP
    )
    assert not first.config["PUBLIC_URL"]  # the README's command sets none
    paid_sn, lost_sn, late_sn = member_orders(first)[:3]
    with serving(first) as base_url:
        browser, cashier = start_on_cashier(first, base_url, lost_sn)
        pay_alipay(cashier, scenario="lost", session=browser)  # paid at Alipay, its notify lost
        start_on_cashier(first, base_url, late_sn, browser)  # on Alipay's cashier, not paid yet
        pay_on_cashier(browser, base_url, paid_sn)  # paid with mockpay
        wait_until_fulfilled(browser, base_url, paid_sn)
    stop(first)
    mockpay, alipay = payment_of(first, paid_sn), payment_of(first, lost_sn)
    assert (mockpay.payment_status, alipay.payment_status) == (PaymentStatus.PAID, PaymentStatus.UNPAID)
    with first.app_context():  # placed an hour ago: past the restarted shop's timeout, however fast this ran
        for order in db.session.scalars(select(Order)):
            order.create_time -= timedelta(hours=1)
        db.session.commit()

    # the shop restarts on the same instance folder and database
    again = create_app(
        {
            **{
                key: first.config[key]
                for key in (
                    "TESTING",
                    "INSTANCE_PATH",
                    "DATABASE_URL",
                    "SECRET_KEY",
                    "RECONCILE_GRACE_SECONDS",
                    "RECONCILE_SECONDS",
                )
            },
            "ORDER_PAY_TIMEOUT_SECONDS": 60,
        }
    )  # every order placed before the restart is due
    cli = again.test_cli_runner()
    try:
        part = cli.invoke(args=["payments", "refund", str(mockpay.id), "1.00", "--key", "R-1"])
        assert part.exit_code == 0, part.output
        rest = mockpay.total_amount - Decimal("1.00")
        full = cli.invoke(args=["payments", "refund", str(mockpay.id), f"{rest:.2f}", "--key", "R-2"])
        assert full.exit_code == 0, full.output
        assert payment_of(again, paid_sn).payment_status is PaymentStatus.REFUNDED
        assert again.wsgi_app.mounts["/mockpay"].ledger.trade(paid_sn).refunded == mockpay.total_amount

        reconciled = cli.invoke(args=["reconcile"])
        assert reconciled.exit_code == 0, reconciled.output
        assert f"alipay {lost_sn} (order {lost_sn}): paid" in reconciled.output
        assert payment_of(again, lost_sn).payment_status is PaymentStatus.PAID

        gateway = again.wsgi_app.mounts["/alipay-sandbox"]
        gateway.ledger.pay(late_sn, beijing_now())  # paid at the last minute, no notify
        expired = cli.invoke(args=["expire", "--limit", "100"])  # the last query...
        assert expired.exit_code == 0, expired.output
        assert f"{late_sn}: paid" in expired.output, expired.output  # ...finds the money: paid, not closed
        assert payment_of(again, late_sn).payment_status is PaymentStatus.PAID

        refund = cli.invoke(
            args=["payments", "refund", str(alipay.id), f"{alipay.total_amount:.2f}", "--key", "A-1"]
        )
        assert refund.exit_code == 0, refund.output
        assert again.wsgi_app.mounts["/alipay-sandbox"].ledger.get(lost_sn).refunded == alipay.total_amount
    finally:
        stop(again)
