"""The operator page in Chromium: find a payment, read its whole story, refund it in part then in
full through the page's form, clear its flag; it fits a desktop and a phone."""

import os
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import update
from support.shop import browser_login, member_orders, pay_on_cashier, wait_until_fulfilled

from gmall_payment.adapters.sql.models import PaymentInfo, db
from gmall_payment.plugins.alipay.client import beijing_now

SHOTS = Path(os.environ.get("BROWSER_ARTIFACTS", ".artifacts/browser"))


def paid(app, base_url, count=1):
    """``count`` of demo's orders paid with mockpay (over HTTP) and fulfilled; their payments."""
    shopper = browser_login(base_url)
    payments = []
    for order_sn in member_orders(app)[:count]:
        pay_on_cashier(shopper, base_url, order_sn)
        wait_until_fulfilled(shopper, base_url, order_sn)
        with app.app_context():
            found = app.extensions["gmall"].payments.uow().payments.for_order(order_sn)
        payments.append(next(p for p in found if p.payment_type == "mockpay"))
    return payments


def operator_log_in(page, app, base_url, target="/operator/payments"):
    page.goto(f"{base_url}{target}")
    page.fill("input[name=token]", app.config["OPERATOR_TOKEN"])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/operator/payments.*"))


def flag(app, payment_id, text):
    with app.app_context():
        db.session.execute(update(PaymentInfo).where(PaymentInfo.id == payment_id).values(flag=text))
        db.session.commit()


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"operator-{name}.png"), full_page=True)


def no_sideways_scroll(page):
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_partial_then_a_full_refund_through_the_form(live_shop, page):
    app, base_url = live_shop
    [payment] = paid(app, base_url)
    operator_log_in(page, app, base_url, f"/operator/payments/{payment.id}")
    assert page.url.endswith(f"/operator/payments/{payment.id}")
    key = page.locator("#refund-form input[name=out_request_no]")
    assert key.input_value() == f"OP-{payment.id}-1"  # pre-filled, the same on a second submit

    page.fill("#refund-form input[name=amount]", "1.00")
    page.click("#refund-form button[type=submit]")
    page.locator(".notice-done").filter(has_text=f"refund OP-{payment.id}-1: ¥1.00 succeeded").wait_for()
    assert "部分退款" in page.locator("#status").inner_text()
    rest = payment.total_amount - Decimal("1.00")
    assert page.locator("#refundable").inner_text() == f"¥{rest:,.2f}"
    assert key.input_value() == f"OP-{payment.id}-2"

    page.fill("#refund-form input[name=amount]", f"{rest:.2f}")
    page.click("#refund-form button[type=submit]")
    page.locator(".notice-done").filter(has_text=f"OP-{payment.id}-2").wait_for()
    shot(page, "refunded")
    assert "已退款" in page.locator("#status").inner_text()
    assert page.locator("#not-refundable").is_visible() and page.locator("#refund-form").count() == 0
    refunds = page.locator("#refunds tbody tr:not(.detail)").all_inner_texts()
    assert [row.split("\t")[0] for row in refunds] == [f"OP-{payment.id}-1", f"OP-{payment.id}-2"]
    assert app.wsgi_app.mounts["/mockpay"].ledger.trade(payment.out_trade_no).refunded == payment.total_amount
    assert "revoke_points" in page.locator("#fulfilment").inner_text()  # the points came back


def test_a_refund_the_service_refuses_says_why_and_changes_nothing(live_shop, page):
    app, base_url = live_shop
    [payment] = paid(app, base_url)
    operator_log_in(page, app, base_url, f"/operator/payments/{payment.id}")
    page.fill("#refund-form input[name=amount]", f"{payment.total_amount + 1:.2f}")
    page.click("#refund-form button[type=submit]")
    page.locator(".notice-refused").filter(has_text="at most").wait_for()
    assert "已支付" in page.locator("#status").inner_text()
    assert page.locator("#refunds td.empty").count() == 1


def test_search_by_order_number_the_flagged_first_and_the_flagged_filter(live_shop, page):
    app, base_url = live_shop
    first, second, third = paid(app, base_url, 3)
    flag(app, first.id, "ask the shopper: charged twice?")
    operator_log_in(page, app, base_url)

    rows = page.locator("#payments tbody tr")
    assert rows.first.get_attribute("id") == f"payment-{first.id}"  # flagged first, though the oldest
    assert "flagged" in rows.first.get_attribute("class")

    page.fill("#filters input[name=q]", second.order_sn[:-1])  # a prefix will do
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r".*q=.*"))
    assert [row.get_attribute("id") for row in rows.all()] == [f"payment-{second.id}"]
    page.fill("#filters input[name=q]", "NO-SUCH-ORDER")
    page.click("#filters button[type=submit]")
    page.locator("#no-payments").wait_for()

    page.goto(f"{base_url}/operator/payments")
    page.select_option("#filters select[name=attention]", "flagged")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r".*attention=flagged.*"))
    assert [row.get_attribute("id") for row in rows.all()] == [f"payment-{first.id}"]
    shot(page, "flagged")

    page.click(f"#payment-{first.id} a >> nth=0")
    page.click("#clear-flag-form button")
    page.locator(".notice-done").filter(has_text="flag cleared").wait_for()
    assert page.locator("#flag").count() == 0
    page.goto(f"{base_url}/operator/payments?attention=flagged")
    page.locator("#no-payments").wait_for()
    assert third.id  # (three paid, one flagged)


def test_a_payments_whole_story_is_on_one_page(live_shop, page):
    app, base_url = live_shop
    with (
        app.app_context()
    ):  # the shopper chose 支付宝 first, then paid with mockpay: the order's other payment
        other = app.extensions["gmall"].payments.start(member_orders(app)[0], "alipay")
    [payment] = paid(app, base_url)
    assert payment.order_sn == other.order_sn
    operator_log_in(page, app, base_url, f"/operator/payments/{payment.id}")
    shot(page, "story")

    summary = page.locator("#payment").inner_text()
    assert payment.order_sn in summary and "待发货" in summary and f"¥{payment.total_amount:,.2f}" in summary
    assert re.search(r"创建 created\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", summary)  # as people read times
    assert "T" not in page.locator("#notifications tbody tr >> nth=0").inner_text().split("\t")[1]
    heard = page.locator("#notifications").inner_text()
    assert "notify" in heard and "paid" in heard
    trace = page.locator("#fulfilment").inner_text()
    assert all(step in trace for step in ("mark_order_paid", "deduct_stock", "award_points"))
    others = page.locator("#order-payments")
    assert f"#{other.id}" in others.inner_text() and "alipay" in others.inner_text()
    others.locator(f"a:text('#{other.id}')").click()
    page.wait_for_url(re.compile(rf".*/operator/payments/{other.id}$"))
    assert "未支付" in page.locator("#status").inner_text()


@pytest.mark.parametrize("width", [1280, 390])
def test_the_operator_pages_fit_the_screen(live_shop, page, width):
    app, base_url = live_shop
    payments = paid(app, base_url, 2)
    flag(app, payments[0].id, "a long flag to see how it wraps: " + "字" * 120)
    page.set_viewport_size({"width": width, "height": 900})
    operator_log_in(page, app, base_url)
    shot(page, f"list-{width}")
    assert no_sideways_scroll(page)
    fits = page.evaluate(
        "(() => { const w = document.querySelector('.table-wrap');"
        " return w.scrollWidth <= w.clientWidth; })()"
    )
    assert fits == (width >= 1280)  # a desktop shows the whole table; a phone scrolls it in its box
    page.goto(f"{base_url}/operator/payments/{payments[0].id}")
    shot(page, f"story-{width}")
    assert no_sideways_scroll(page)


@pytest.mark.parametrize("width", [1280, 390])
def test_the_bill_runs_page_shows_each_run_and_fits_the_screen(live_shop, page, width):
    app, base_url = live_shop
    [payment] = paid(app, base_url)
    with app.app_context():  # Alipay's bill of a day to come is not made: a failed run; then one that read
        bills = app.extensions["gmall"].bills
        failed = bills.run("alipay", beijing_now().date() + timedelta(days=1))
        done = bills.run("alipay", beijing_now().date())
    page.set_viewport_size({"width": width, "height": 900})
    operator_log_in(page, app, base_url)
    page.click("#nav-bills")
    page.wait_for_url(re.compile(r".*/operator/bills$"))
    shot(page, f"bills-{width}")

    assert page.locator("#bill-runs tbody tr").count() == 2
    assert "isp.bill_not_exist" in page.inner_text(f"#bill-run-{failed.id} .outcome")
    assert page.inner_text(f"#bill-run-{done.id} .outcome").startswith("已对账 done")
    assert payment.payment_type == "mockpay"  # mockpay keeps no bills: nothing of it to differ
    assert no_sideways_scroll(page)
