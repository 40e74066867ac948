"""PaymentService.start: one payment per order and provider, for the order's own amount."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from gmall_payment.core.errors import OrderNotFound, OrderNotPayable, UnknownProvider
from gmall_payment.core.model import OrderItem, OrderStatus, PaymentStatus
from gmall_payment.core.payments import PaymentService
from gmall_payment.ports.provider import Checkout, CheckoutUrls


def test_start_records_an_unpaid_payment_for_the_orders_amount(payments, make_order, stored_payments, clock):
    order_sn = make_order(pay_amount=Decimal("123.45"))

    payment = payments.start(order_sn, "fakepay")

    assert payment.id is not None
    assert payment.order_sn == order_sn
    assert payment.out_trade_no == order_sn
    assert payment.payment_type == "fakepay"
    assert payment.total_amount == Decimal("123.45")
    assert payment.total_amount != Decimal("0.01")  # the seed's hard-coded amount
    assert payment.payment_status == PaymentStatus.UNPAID
    assert payment.trade_no is None and payment.callback_time is None
    assert payment.create_time == clock.now
    [row] = stored_payments()
    assert row == payment


def test_amount_is_normalised_to_two_places(payments, make_order):
    order_sn = make_order(pay_amount=Decimal("88.1000"))  # DECIMAL(18,4) from the database
    assert payments.start(order_sn, "fakepay").total_amount.as_tuple() == Decimal("88.10").as_tuple()


def test_subject_comes_from_the_items_names(payments, make_order):
    payment = payments.start(make_order(), "fakepay")
    assert payment.subject == "谷粒商城-华为 Mate 60、小米 14"


def test_subject_without_items_and_long_subjects(payments, make_order):
    bare = payments.start(make_order("A1", items=[], locks=()), "fakepay")
    assert bare.subject == "谷粒商城-谷粒商城订单"
    many = [OrderItem(i, f"商品名称很长很长的第{i}件", 1, Decimal("1.00")) for i in range(20)]
    long = payments.start(make_order("A2", items=many, locks=()), "fakepay")
    assert long.subject.startswith("谷粒商城-商品名称很长很长的第0件、")
    assert len(long.subject) <= 100


def test_unknown_order(payments):
    with pytest.raises(OrderNotFound) as error:
        payments.start("nope", "fakepay")
    assert error.value.order_sn == "nope"


@pytest.mark.parametrize(
    "status",
    [
        OrderStatus.AWAITING_SHIPMENT,
        OrderStatus.SHIPPED,
        OrderStatus.DONE,
        OrderStatus.CLOSED,
        OrderStatus.INVALID,
    ],
)
def test_order_not_awaiting_payment_is_not_payable(payments, make_order, stored_payments, status):
    order_sn = make_order(status=status)
    with pytest.raises(OrderNotPayable) as error:
        payments.start(order_sn, "fakepay")
    assert str(error.value) == "此订单无法支付,可能已经过期!"
    assert error.value.order_sn == order_sn
    assert stored_payments() == []


def test_starting_twice_returns_the_same_payment(payments, make_order, stored_payments):
    order_sn = make_order()
    first = payments.start(order_sn, "fakepay")
    second = payments.start(order_sn, "fakepay")
    assert second.id == first.id
    assert second == first
    assert len(stored_payments()) == 1


def test_two_providers_make_two_payments(payments, make_order, stored_payments):
    order_sn = make_order()
    fake = payments.start(order_sn, "fakepay")
    other = payments.start(order_sn, "otherpay")
    assert fake.id != other.id
    assert [(p.order_sn, p.payment_type) for p in stored_payments()] == [
        (order_sn, "fakepay"),
        (order_sn, "otherpay"),
    ]


def test_racing_starts_make_one_payment(payments, make_order, stored_payments, race):
    order_sn = make_order()
    results = race(8, lambda i: payments.start(order_sn, "fakepay"))
    assert len({payment.id for payment in results}) == 1
    assert len(stored_payments()) == 1


def test_unknown_provider(payments, make_order, stored_payments):
    with pytest.raises(UnknownProvider) as error:
        payments.start(make_order(), "wechat")
    assert error.value.name == "wechat"
    assert stored_payments() == []


def test_already_paid_payment_is_not_payable(payments, make_order, notify_params, stored_payments):
    order_sn = make_order()
    payments.start(order_sn, "fakepay")
    assert payments.handle_notification("fakepay", notify_params()).outcome == "paid"

    # The order is still 0 until fulfilment runs, but its payment is paid.
    with pytest.raises(OrderNotPayable):
        payments.start(order_sn, "fakepay")
    assert [p.payment_status for p in stored_payments()] == [PaymentStatus.PAID]


def test_closed_payment_is_not_payable(payments, make_order, notify_params):
    order_sn = make_order()
    payments.start(order_sn, "fakepay")
    assert (
        payments.handle_notification("fakepay", notify_params(trade_status="TRADE_CLOSED")).outcome
        == "closed"
    )
    with pytest.raises(OrderNotPayable):
        payments.start(order_sn, "fakepay")


def test_order_paid_with_one_provider_cannot_start_with_another(
    payments, make_order, notify_params, stored_payments
):
    order_sn = make_order()
    payments.start(order_sn, "fakepay")
    payments.handle_notification("fakepay", notify_params())
    with pytest.raises(OrderNotPayable):
        payments.start(order_sn, "otherpay")
    assert len(stored_payments()) == 1


def test_checkout_tells_the_provider_when_the_order_closes(db, registry, clock, make_order):
    """The provider learns the order's deadline with the URLs (Alipay's time_expire)."""
    seen = []
    provider = registry.get("fakepay")
    provider.checkout = lambda payment, urls: (
        seen.append(urls) or Checkout(redirect_url="https://fakepay.example/")
    )
    deadline = clock.now + timedelta(minutes=30)
    service = PaymentService(
        db.unit_of_work,
        registry,
        clock=clock,
        pay_deadline=lambda order: deadline if order.order_sn == "A1" else None,
    )
    urls = CheckoutUrls("https://shop.example/notify", "https://shop.example/return")

    service.checkout(make_order("A1"), "fakepay", urls)
    service.checkout(make_order("A2", locks=()), "fakepay", urls)

    assert seen == [replace(urls, expires_at=deadline), urls]
