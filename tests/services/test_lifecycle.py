"""A payment's life after checkout on the real services: MariaDB, Redis, `dramatiq` workers.

Reconciliation of lost notifications, money paid twice going back, refunds repeated or
summing past the payment. The providers' sandboxes (mockpay, the offline Alipay gateway) are
mounted in the shop's web side, served over HTTP; the worker processes call them there.
"""

from concurrent.futures import ThreadPoolExecutor
from decimal import ROUND_DOWN, Decimal

import pytest
import requests
from sqlalchemy import func, select
from support.services import OPERATOR_TOKEN, wait_until

from gmall_payment.adapters.sql.models import (
    Member,
    Order,
    PaymentInfo,
    PaymentNotification,
    PaymentRefund,
    PointsLedger,
    StockLock,
    WareSku,
    db,
)
from gmall_payment.plugins.alipay.client import beijing_now
from gmall_payment.ports.provider import CheckoutUrls

pytestmark = pytest.mark.services

#: Reconciliation soon and often; mockpay's notify retries (hence its query series) short.
RECONCILING = {
    "RECONCILE_GRACE_SECONDS": 1,
    "RECONCILE_SECONDS": 0.5,
    "MOCKPAY_NOTIFY_SCHEDULE": "0,0.5,1,1,2",
}


def check_out_with_mockpay(shop, order_sn) -> None:
    """The shopper chooses mockpay: the shop opens the trade at its sandbox (mounted in the shop)."""
    urls = CheckoutUrls(f"{shop.url}/notify/mockpay", f"{shop.url}/pay/return/mockpay")
    with shop.app.app_context():
        shop.services.payments.checkout(order_sn, "mockpay", urls)


def press_pay(shop, order_sn, scenario) -> requests.Response:
    """The shopper presses "pay" on mockpay's cashier with a notify ``scenario``."""
    return requests.post(
        f"{shop.url}/mockpay/cashier",
        allow_redirects=False,
        timeout=30,
        data={"out_trade_no": shop.payments[order_sn].out_trade_no, "action": "pay", "scenario": scenario},
    )


def pay_at_mockpay(shop, order_sn, scenario) -> None:
    """The shopper checks out with mockpay and pays on its cashier with a notify ``scenario``."""
    check_out_with_mockpay(shop, order_sn)
    answer = press_pay(shop, order_sn, scenario)
    assert answer.status_code == 303, answer.text


def rows(shop, model, *where):
    with shop.app.app_context():
        found = db.session.scalars(select(model).where(*where)).all()
        db.session.expunge_all()
        return found


def operator_refund(order_sn_or_id, amount, key, shop):
    payment_id = order_sn_or_id if isinstance(order_sn_or_id, int) else shop.payments[order_sn_or_id].id
    return requests.post(
        f"{shop.url}/api/operator/payments/{payment_id}/refunds",
        timeout=60,
        json={"amount": amount, "out_request_no": key},
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
    )


def test_lost_notifications_are_reconciled_and_fulfilled_once(make_shop):
    shop = make_shop(**RECONCILING)
    orders = shop.arrange(30)
    lost, notified = orders[:20], orders[20:]
    for order in lost:
        pay_at_mockpay(shop, order.order_sn, "lost")
    shop.worker().start()
    assert shop.notify_all([o.order_sn for o in notified]) == ["success"] * 10

    shop.wait_fulfilled(30, timeout=120)

    shop.assert_fulfilled_exactly_once()
    queries = rows(
        shop,
        PaymentNotification,
        PaymentNotification.source == "query",
        PaymentNotification.outcome == "paid",
    )
    assert sorted(n.out_trade_no for n in queries) == sorted(o.order_sn for o in lost)  # only the lost ones
    paid = rows(shop, PaymentInfo)
    assert {p.payment_status for p in paid} == {1}
    trades = {
        o.order_sn: shop.app.wsgi_app.mounts["/mockpay"].ledger.trade(o.order_sn).trade_no for o in lost
    }
    assert all(
        p.trade_no == trades[p.order_sn] for p in paid if p.order_sn in trades
    )  # the trade the query named


def test_two_providers_both_paid_one_refund_each_order(make_shop):
    shop = make_shop(PROVIDERS="mockpay,alipay")
    orders = shop.arrange(12)
    gateway = shop.app.wsgi_app.mounts["/alipay-sandbox"]
    alipay_notifies = []
    for order in orders:
        with shop.app.app_context():
            payment = shop.services.payments.start(order.order_sn, "alipay")
        gateway.ledger.open(
            order.order_sn,
            payment.total_amount,
            payment.subject,
            f"{shop.url}/notify/alipay",
            None,
            beijing_now(),
        )
        trade = gateway.ledger.pay(order.order_sn, beijing_now())  # paid at Alipay...
        alipay_notifies.append(gateway.notify_params(trade))
        pay_at_mockpay(shop, order.order_sn, "lost")  # ...and at mockpay, both notifies on their way
    shop.worker().start()

    def both(index):  # the two notifications of one order race each other
        return (
            requests.post(f"{shop.url}/notify/alipay", data=alipay_notifies[index], timeout=30).text,
            shop.notify(orders[index].order_sn),
        )

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(both, range(len(orders))))

    assert answers == [("success", "success")] * len(orders)
    refunded = select(func.count()).select_from(PaymentInfo).where(PaymentInfo.payment_status == 4)
    wait_until(lambda: shop.count(refunded) == len(orders), 90, "not every second payment was refunded")
    shop.wait_fulfilled(len(orders))
    shop.assert_fulfilled_exactly_once()
    mockpay = shop.app.wsgi_app.mounts["/mockpay"]
    for order in orders:
        payments = {
            p.payment_type: p for p in rows(shop, PaymentInfo, PaymentInfo.order_sn == order.order_sn)
        }
        statuses = sorted((p.payment_status, p.refund_reason) for p in payments.values())
        assert statuses == [(1, None), (4, "paid_twice")], order.order_sn
        extra = next(p for p in payments.values() if p.refund_reason)
        at_provider = {
            "alipay": gateway.ledger.get(order.order_sn).refunded,
            "mockpay": mockpay.ledger.trade(order.order_sn).refunded,
        }
        assert at_provider[extra.payment_type] == extra.total_amount  # that one refunded, in full, once
        assert sum(at_provider.values()) == extra.total_amount  # and the other not at all
        [refund] = rows(shop, PaymentRefund, PaymentRefund.order_sn == order.order_sn)
        assert (refund.out_request_no, refund.status) == (f"auto-{extra.id}", 1)
    assert {n.outcome for n in rows(shop, PaymentNotification)} >= {"paid", "paid_twice"}


def paid_and_fulfilled(make_shop):
    """A shop with a worker and one order paid with mockpay (its sandbox took the money) and fulfilled."""
    shop = make_shop()
    [order] = shop.arrange(1)
    pay_at_mockpay(shop, order.order_sn, "lost")
    assert shop.notify(order.order_sn) == "success"
    shop.worker().start()
    shop.wait_fulfilled(1)
    return shop, order


def test_refunds_repeated_with_one_key_make_one_refund(make_shop):
    shop, order = paid_and_fulfilled(make_shop)

    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: operator_refund(order.order_sn, "10.00", "SAME-KEY", shop), range(8))
        )

    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
    assert {a.json()["refund"]["id"] for a in answers} == {answers[0].json()["refund"]["id"]}
    assert {a.json()["refund"]["status"] for a in answers} == {"succeeded"}
    assert shop.app.wsgi_app.mounts["/mockpay"].ledger.trade(order.order_sn).refunds == {
        "SAME-KEY": Decimal("10.00")
    }
    [refund] = rows(shop, PaymentRefund)
    [payment] = rows(shop, PaymentInfo)
    assert (refund.amount, payment.refunded, payment.refund_reserved, payment.payment_status) == (
        Decimal("10.00"),
        Decimal("10.00"),
        Decimal("10.00"),
        3,
    )


def test_partial_refunds_summing_past_the_amount_are_refused_clearly(make_shop):
    shop, order = paid_and_fulfilled(make_shop)
    total = shop.payments[order.order_sn].total_amount
    part = (total * Decimal("0.3")).quantize(Decimal("0.01"), rounding=ROUND_DOWN)  # three fit, four do not
    with shop.app.app_context():
        member_before = db.session.get(Member, order.member_id)
        points_before = (member_before.integration, member_before.growth)

    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda n: operator_refund(order.order_sn, str(part), f"PART-{n}", shop), range(8))
        )

    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 3 + [409] * 5, [a.text for a in answers]
    refused = [a.json() for a in answers if a.status_code == 409]
    assert {r["error"] for r in refused} == {"exceeds_payment"}
    assert all(
        r["message"].startswith(f"refund of {part} refused: ") and "can be refunded" in r["message"]
        for r in refused
    )
    sandbox_trade = shop.app.wsgi_app.mounts["/mockpay"].ledger.trade(order.order_sn)
    [payment] = rows(shop, PaymentInfo)
    assert sandbox_trade.refunded == payment.refunded == payment.refund_reserved == part * 3
    assert payment.payment_status == 3
    assert len(rows(shop, PaymentRefund)) == 3  # the refused ones left no row

    rest = total - part * 3
    too_much = operator_refund(order.order_sn, str(rest + Decimal("0.01")), "REST", shop)
    assert too_much.status_code == 409 and f"at most {rest} can be refunded" in too_much.json()["message"]
    full = operator_refund(order.order_sn, str(rest), "REST", shop)
    assert full.status_code == 200 and full.json()["payment"]["status"] == "refunded"

    revoked = select(func.count()).select_from(PointsLedger).where(PointsLedger.kind == "revoke")
    wait_until(lambda: shop.count(revoked) == 1, 60, "the points were not taken back")
    with shop.app.app_context():
        member = db.session.get(Member, order.member_id)
        assert (member.integration, member.growth) == (
            points_before[0] - order.integration,
            points_before[1] - order.growth,
        )
        assert db.session.scalar(select(Order.status).where(Order.order_sn == order.order_sn)) == 1


def test_expiry_while_shoppers_are_on_the_cashier_closes_their_trades_and_nothing_is_paid(make_shop):
    """Orders expire while half their shoppers are on mockpay's cashier (the shop opened their
    trades, with time_expire at the orders' expiry) and the other half never chose a provider:
    the worker closes them all (stock released); mockpay closed the open trades at their
    time_expire (the last query says so), the others are closed here (mockpay never opened
    them). The shoppers who then press "pay" are refused: no money comes in for a closed order."""
    shop = make_shop(ORDER_PAY_TIMEOUT_SECONDS=2, EXPIRY_SECONDS=0.5, **RECONCILING)
    orders = shop.arrange(10)
    paying = orders[:5]
    for order in paying:
        check_out_with_mockpay(shop, order.order_sn)
    mockpay = shop.app.wsgi_app.mounts["/mockpay"]
    assert {mockpay.ledger.trade(o.order_sn).trade_status for o in paying} == {"WAIT_BUYER_PAY"}
    with shop.app.app_context():
        stock_before = {s.sku_id: (s.stock, s.sales) for s in db.session.scalars(select(WareSku))}
    shop.worker().start()

    closed = select(func.count()).select_from(Order).where(Order.status == 4)
    wait_until(lambda: shop.count(closed) == 10, 60, "the orders did not expire")
    trades_closed = select(func.count()).select_from(PaymentInfo).where(PaymentInfo.payment_status == 2)
    wait_until(lambda: shop.count(trades_closed) == 10, 60, "the trades were not closed")
    refusals = [press_pay(shop, order.order_sn, "normal") for order in paying]

    assert [(r.status_code, "closed" in r.text) for r in refusals] == [(409, True)] * 5
    assert mockpay.notifier.join(10) and mockpay.notifier.attempts == []
    for order in orders:
        [payment] = rows(shop, PaymentInfo, PaymentInfo.order_sn == order.order_sn)
        assert (payment.payment_status, payment.refund_reason, payment.refunded) == (2, None, 0)
        trade = mockpay.ledger.trade(order.order_sn)
        if order in paying:
            assert (trade.trade_status, trade.gmt_payment, trade.refunds) == ("TRADE_CLOSED", None, {})
        else:
            assert trade is None
    with shop.app.app_context():
        assert set(db.session.scalars(select(Order.status))) == {4}
        assert set(db.session.scalars(select(StockLock.status))) == {2}  # released, never deducted
        stock = {s.sku_id: (s.stock, s.sales, s.stock_locked) for s in db.session.scalars(select(WareSku))}
        assert stock == {sku: (*numbers, 0) for sku, numbers in stock_before.items()}
        assert db.session.scalar(select(func.count()).select_from(PointsLedger)) == 0
    assert rows(shop, PaymentNotification, PaymentNotification.source == "notify") == []
    queried = [
        (n.out_trade_no, n.outcome)
        for n in rows(shop, PaymentNotification, PaymentNotification.source == "query")
    ]
    # mockpay closed the open trades at their time_expire: a query says so (later ones: duplicate)
    assert {sn for sn, outcome in queried if outcome == "closed"} == {o.order_sn for o in paying}
    assert "paid" not in {outcome for _, outcome in queried}
