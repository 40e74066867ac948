"""The store contract: what every implementation of ports.store must do, on every backend."""

import threading
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pytest
from support import races

from gmall_payment.core import events
from gmall_payment.core.bills import BillRun
from gmall_payment.core.model import (
    LockStatus,
    NotificationRecord,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentRefund,
    PaymentStatus,
    PointsKind,
    RefundStatus,
)
from gmall_payment.ports.store import DETAIL_LENGTH, FLAG_LENGTH, TEXT_BYTES, relayed

MEMBER = 7
SN = "202405011230450001"
OTHER_SN = "202405011230450002"
CREATED = datetime(2024, 5, 1, 12, 30, 45)  # whole seconds: MySQL DATETIME keeps no fraction
RACERS = 8


def a_payment(order_sn=SN, provider="alipay", amount="123.45", **fields) -> Payment:
    return Payment(
        order_sn=order_sn,
        payment_type=provider,
        total_amount=Decimal(amount),
        subject="谷粒商城-华为 Mate 60",
        create_time=CREATED,
        **fields,
    )


def an_order(order_sn=SN, pay_amount="123.45", status=OrderStatus.AWAITING_PAYMENT) -> Order:
    return Order(
        order_sn=order_sn,
        member_id=MEMBER,
        status=status,
        pay_amount=Decimal(pay_amount),
        integration=123,
        growth=45,
        items=[
            OrderItem(sku_id=1, sku_name="华为 Mate 60", quantity=1, price=Decimal("100.05")),
            OrderItem(sku_id=2, sku_name="充电器", quantity=2, price=Decimal("11.70")),
        ],
    )


@pytest.fixture
def shop(backend):
    """A member, two SKUs and an order awaiting payment that locks 1 and 2 units of them."""
    backend.add_member(MEMBER, "leifengyang")
    backend.add_sku(1, "华为 Mate 60", 10)
    backend.add_sku(2, "充电器", 20)
    backend.add_order(an_order(), locks=[(1, 1), (2, 2)])
    return backend


def stored(backend, payment: Payment) -> Payment:
    """Add ``payment`` in a committed unit of work of its own."""
    with backend.uow() as uow:
        payment = uow.payments.add_once(payment)
        uow.commit()
    return payment


def read(backend, look):
    """What ``look(uow)`` sees in a fresh unit of work (which then rolls back)."""
    with backend.uow() as uow:
        return look(uow)


def race(backend, attempt):
    """Run ``attempt(uow)`` from RACERS threads released together, each committing its own
    unit of work in its own context; return what each attempt returned.

    Each racer first reads the order, as the services do. Where units of work run side by
    side, all of them have read before any writes, so a loser that re-reads must see the
    winner's row past the snapshot its first read may have fixed (MySQL REPEATABLE READ).
    """
    all_have_read = threading.Barrier(RACERS if backend.concurrent else 1, timeout=30)

    def run(_):
        # released before entering: the in-process unit of work holds a lock
        with backend.uow() as uow:
            uow.orders.get(SN)
            all_have_read.wait()
            result = attempt(uow)
            uow.commit()
            return result

    return races.race(RACERS, run, inside=backend.context, timeout=60)


# payments


def test_find_by_trade_and_for_order(shop):
    alipay = stored(shop, a_payment(provider="alipay"))
    mockpay = stored(shop, a_payment(provider="mockpay", out_trade_no="M-" + SN))
    stored(shop, a_payment(order_sn=OTHER_SN))

    with shop.uow() as uow:
        found = uow.payments.find(SN, "alipay")
        assert found == alipay
        assert (found.out_trade_no, found.subject, found.create_time) == (
            SN,
            "谷粒商城-华为 Mate 60",
            CREATED,
        )
        assert found.payment_status is PaymentStatus.UNPAID
        assert uow.payments.find(SN, "wechat") is None
        assert uow.payments.by_trade("mockpay", "M-" + SN) == mockpay
        assert uow.payments.by_trade("alipay", "M-" + SN) is None
        assert [p.id for p in uow.payments.for_order(SN)] == [alipay.id, mockpay.id]
        assert uow.payments.for_order("nope") == []


def test_add_once_twice_keeps_the_first(shop):
    first = stored(shop, a_payment(amount="123.45"))
    with shop.uow() as uow:
        again = uow.payments.add_once(a_payment(amount="999.99"))
        same_uow = uow.payments.add_once(a_payment(amount="1.00"))
        uow.commit()

    assert first.id is not None
    assert again.id == same_uow.id == first.id
    assert again.total_amount == Decimal("123.45")
    assert len(read(shop, lambda uow: uow.payments.for_order(SN))) == 1


def test_add_once_racing_leaves_one_row(shop):
    ids = race(shop, lambda uow: uow.payments.add_once(a_payment()).id)

    assert len(set(ids)) == 1 and ids[0] is not None
    assert [p.id for p in read(shop, lambda uow: uow.payments.for_order(SN))] == ids[:1]


def test_add_once_refuses_a_trade_number_of_another_order(shop):
    stored(shop, a_payment(order_sn=OTHER_SN, out_trade_no="T-1"))
    with shop.uow() as uow, pytest.raises(ValueError):
        uow.payments.add_once(a_payment(out_trade_no="T-1"))


def test_payment_move_is_compare_and_set(shop):
    payment = stored(shop, a_payment())
    paid_at = datetime(2024, 5, 1, 12, 31, 2)
    with shop.uow() as uow:
        assert uow.payments.move(
            payment.id,
            PaymentStatus.UNPAID,
            PaymentStatus.PAID,
            trade_no="2024050122001",
            callback_time=paid_at,
            callback_content="trade_status=TRADE_SUCCESS",
        )
        assert not uow.payments.move(payment.id, PaymentStatus.UNPAID, PaymentStatus.CLOSED)
        assert not uow.payments.move(payment.id + 1000, PaymentStatus.UNPAID, PaymentStatus.PAID)
        uow.commit()

    now = read(shop, lambda uow: uow.payments.find(SN, "alipay"))
    assert now.payment_status is PaymentStatus.PAID
    assert (now.trade_no, now.callback_time, now.callback_content) == (
        "2024050122001",
        paid_at,
        "trade_status=TRADE_SUCCESS",
    )
    assert not read(shop, lambda uow: uow.payments.move(payment.id, PaymentStatus.UNPAID, PaymentStatus.PAID))


def test_moved_answers_the_payment_as_the_store_then_holds_it(shop):
    """The notify path returns ``moved``'s payment instead of reading it back: it must be what
    a read gives, the body fitted as stored; None once another move came first."""
    payment = stored(shop, a_payment())
    body = "x" * (TEXT_BYTES + 10)
    with shop.uow() as uow:
        moved = uow.payments.moved(
            payment, PaymentStatus.PAID, trade_no="T9", callback_time=CREATED, callback_content=body
        )
        assert uow.payments.moved(payment, PaymentStatus.CLOSED) is None  # it is no longer UNPAID
        uow.commit()

    assert moved == read(shop, lambda uow: uow.payments.get(payment.id))
    assert moved.payment_status is PaymentStatus.PAID and moved.trade_no == "T9"
    assert len(moved.callback_content.encode()) <= TEXT_BYTES and moved.callback_content.startswith("xxx")


def test_get_by_id_and_move_changes_only_the_fields_given(shop):
    payment = stored(shop, a_payment(next_query_time=datetime(2024, 5, 1, 12, 35)))
    with shop.uow() as uow:
        assert uow.payments.get(payment.id) == payment
        assert uow.payments.get(payment.id + 1000) is None
        assert uow.payments.move(
            payment.id,
            PaymentStatus.UNPAID,
            PaymentStatus.PAID,
            trade_no="T1",
            callback_time=CREATED,
            callback_content="paid",
        )
        assert uow.payments.move(payment.id, PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED)
        uow.commit()

    now = read(shop, lambda uow: uow.payments.get(payment.id))
    assert now.payment_status is PaymentStatus.PARTIALLY_REFUNDED
    assert (now.trade_no, now.callback_time, now.callback_content) == ("T1", CREATED, "paid")
    assert now.next_query_time == datetime(2024, 5, 1, 12, 35)
    assert (now.refund_reserved, now.refunded, now.refund_reason, now.flag, now.query_attempts) == (
        Decimal("0.00"),
        Decimal("0.00"),
        None,
        None,
        0,
    )


def test_settle_order_once_per_order(shop):
    first = stored(shop, a_payment(provider="alipay"))
    second = stored(shop, a_payment(provider="mockpay", out_trade_no="M-" + SN))
    with shop.uow() as uow:
        assert uow.payments.settled_by(SN) is None
        assert uow.payments.settle_order(SN, first.id)
        assert not uow.payments.settle_order(SN, second.id)
        assert not uow.payments.settle_order(SN, first.id)
        uow.commit()

    assert read(shop, lambda uow: uow.payments.settled_by(SN)) == first.id
    assert read(shop, lambda uow: uow.payments.settled_by(OTHER_SN)) is None


def test_racing_payments_settle_an_order_once(shop):
    ids = [stored(shop, a_payment(provider=f"p{n}", out_trade_no=f"{n}-{SN}")).id for n in range(RACERS)]
    turns = iter(ids)
    lock = threading.Lock()

    def settle(uow):
        with lock:
            payment_id = next(turns)
        return payment_id, uow.payments.settle_order(SN, payment_id)

    results = race(shop, settle)

    winners = [payment_id for payment_id, won in results if won]
    assert len(winners) == 1
    assert read(shop, lambda uow: uow.payments.settled_by(SN)) == winners[0]


def test_mark_owed_once_and_flags(shop):
    payment = stored(shop, a_payment())
    with shop.uow() as uow:
        assert uow.payments.mark_owed(payment.id, "paid_twice")
        assert not uow.payments.mark_owed(payment.id, "paid_after_close")
        uow.payments.set_flag(payment.id, "看一下 " + "x" * 600)
        uow.commit()

    now = read(shop, lambda uow: uow.payments.get(payment.id))
    assert now.refund_reason == "paid_twice"
    assert now.flag == ("看一下 " + "x" * 600)[:FLAG_LENGTH]
    with shop.uow() as uow:
        uow.payments.set_flag(payment.id, None)
        uow.commit()
    assert read(shop, lambda uow: uow.payments.get(payment.id)).flag is None


def paid(backend, **fields) -> Payment:
    payment = stored(backend, a_payment(**fields))
    with backend.uow() as uow:
        assert uow.payments.move(payment.id, PaymentStatus.UNPAID, PaymentStatus.PAID, trade_no="T1")
        uow.commit()
    return read(backend, lambda uow: uow.payments.get(payment.id))


def test_reserve_refund_only_from_paid_and_within_the_amount(shop):
    unpaid = stored(shop, a_payment(provider="mockpay", out_trade_no="M-" + SN))
    payment = paid(shop)
    with shop.uow() as uow:
        assert not uow.payments.reserve_refund(unpaid.id, Decimal("1.00"))
        assert uow.payments.reserve_refund(payment.id, Decimal("100.00"))
        assert not uow.payments.reserve_refund(payment.id, Decimal("23.46"))
        assert uow.payments.reserve_refund(payment.id, Decimal("23.45"))
        assert not uow.payments.reserve_refund(payment.id, Decimal("0.01"))
        uow.payments.release_refund(payment.id, Decimal("0.10"))
        uow.commit()

    now = read(shop, lambda uow: uow.payments.get(payment.id))
    assert type(now.refund_reserved) is Decimal and str(now.refund_reserved) == "123.35"
    assert str(now.refundable) == "0.10"
    with shop.uow() as uow:
        assert uow.payments.move(payment.id, PaymentStatus.PAID, PaymentStatus.REFUNDED)
        assert not uow.payments.reserve_refund(payment.id, Decimal("0.01"))


def test_racing_refund_reservations_never_exceed_the_amount(shop):
    payment = paid(shop)  # 123.45: room for six reservations of 20.00

    reserved = race(shop, lambda uow: uow.payments.reserve_refund(payment.id, Decimal("20.00")))

    assert sorted(reserved) == [False] * (RACERS - 6) + [True] * 6
    assert read(shop, lambda uow: uow.payments.get(payment.id)).refund_reserved == Decimal("120.00")


def test_racing_refund_completions_all_count(shop):
    payment = paid(shop)

    totals = race(shop, lambda uow: uow.payments.add_refunded(payment.id, Decimal("0.10")).refunded)

    assert sorted(totals) == [Decimal("0.10") * n for n in range(1, RACERS + 1)]  # one after the other
    assert read(shop, lambda uow: uow.payments.get(payment.id)).refunded == Decimal("0.10") * RACERS


def test_due_for_query_are_unpaid_payments_whose_time_has_come(shop):
    at = datetime(2024, 5, 1, 13)
    late = stored(shop, a_payment(provider="a", next_query_time=at.replace(minute=5)))
    early = stored(shop, a_payment(provider="b", out_trade_no="B", next_query_time=at.replace(minute=1)))
    stored(shop, a_payment(provider="c", out_trade_no="C", next_query_time=at.replace(minute=30)))
    stored(shop, a_payment(provider="d", out_trade_no="D"))  # never asked about
    settled = paid(shop, provider="e", out_trade_no="E", next_query_time=at)

    def due(now, limit=10):
        return [p.id for p in read(shop, lambda uow: uow.payments.due_for_query(now, limit))]

    assert due(at.replace(minute=10)) == [early.id, late.id]
    assert due(at.replace(minute=10), limit=1) == [early.id]
    assert due(at.replace(minute=5)) == [early.id, late.id]
    assert due(at) == []
    assert settled.id not in due(at.replace(hour=23))


def test_paid_between_are_the_provider_s_payments_whose_money_came_then(shop):
    day = datetime(2024, 5, 1)

    def paid_at(at, status=PaymentStatus.PAID, **fields):
        payment = stored(shop, a_payment(**fields))
        with shop.uow() as uow:
            assert uow.payments.move(payment.id, PaymentStatus.UNPAID, status, callback_time=at)
            uow.commit()
        return payment

    late = paid_at(day.replace(hour=23, minute=59, second=59, microsecond=999999), out_trade_no="LATE")
    early = paid_at(day, out_trade_no="EARLY", order_sn=OTHER_SN)
    paid_at(day.replace(day=2), out_trade_no="NEXT", provider="mockpay")
    paid_at(day.replace(hour=12), provider="mockpay", out_trade_no="OTHER", order_sn=OTHER_SN)
    paid_at(day.replace(hour=1), status=PaymentStatus.CLOSED, provider="closed", out_trade_no="CLOSED")
    with shop.uow() as uow:
        taken = uow.payments.paid_between("alipay", day, day.replace(day=2))
        assert [p.id for p in taken] == [early.id, late.id]
        assert uow.payments.paid_between("mockpay", day, day.replace(day=2))[0].out_trade_no == "OTHER"
        assert uow.payments.paid_between("closed", day, day.replace(day=2)) == []


def test_bill_runs_are_kept_as_given_newest_first(shop):
    started = datetime(2024, 5, 2, 10, 0, 0, 123456)
    failed = BillRun(
        "alipay", date(2024, 5, 1), started, started, "failed", detail="isp.bill_not_exist: 账单不存在"
    )
    done = BillRun(
        "alipay",
        date(2024, 5, 1),
        started,
        started.replace(second=5),
        "done",
        trade_lines=3,
        refund_lines=1,
        matched=2,
        repaired=1,
        refunds_recorded=1,
        differences=("bill 2024-05-01: paid at alipay, unpaid here: paid", "退款 R-1 “外部”"),
    )
    with shop.uow() as uow:
        kept = [uow.bill_runs.add(run) for run in (failed, done)]
        uow.bill_runs.add(replace(done, provider="other", bill_date=date(2024, 5, 2)))
        uow.commit()

    with shop.uow() as uow:
        assert [run.id for run in uow.bill_runs.recent(3)][1:] == [kept[1].id, kept[0].id]
        assert uow.bill_runs.recent(3)[1:] == kept[::-1]  # every field as given, times to the microsecond
        assert uow.bill_runs.done("alipay", date(2024, 5, 1)) == kept[1]
        assert uow.bill_runs.done("alipay", date(2024, 5, 2)) is None
        assert uow.bill_runs.done("other", date(2024, 5, 1)) is None


def test_schedule_query_is_compare_and_set_on_the_attempts(shop):
    payment = stored(shop, a_payment(next_query_time=CREATED))
    later = datetime(2024, 5, 1, 12, 40)
    with shop.uow() as uow:
        assert uow.payments.schedule_query(payment.id, 0, 1, later)
        assert not uow.payments.schedule_query(payment.id, 0, 1, later)
        assert uow.payments.schedule_query(payment.id, 1, 2, None)
        uow.commit()

    now = read(shop, lambda uow: uow.payments.get(payment.id))
    assert (now.query_attempts, now.next_query_time) == (2, None)


def test_racing_schedules_let_one_worker_ask(shop):
    payment = stored(shop, a_payment(next_query_time=CREATED))

    won = race(shop, lambda uow: uow.payments.schedule_query(payment.id, 0, 1, datetime(2024, 5, 1, 12, 40)))

    assert sorted(won) == [False] * (RACERS - 1) + [True]


# refunds


def a_refund(payment, request_no="R1", amount="10.00", **fields) -> PaymentRefund:
    return PaymentRefund(
        payment_id=payment.id,
        order_sn=payment.order_sn,
        out_request_no=request_no,
        amount=Decimal(amount),
        reason="operator",
        create_time=CREATED,
        update_time=CREATED,
        **fields,
    )


def test_refunds_once_per_request_number(shop):
    payment = paid(shop)
    other = paid(shop, order_sn=OTHER_SN)
    with shop.uow() as uow:
        first, created = uow.refunds.add_once(a_refund(payment, amount="10.00"))
        again, created_again = uow.refunds.add_once(a_refund(payment, amount="99.00"))
        second, _ = uow.refunds.add_once(a_refund(payment, "R2", "0.01"))
        theirs, created_theirs = uow.refunds.add_once(a_refund(other, "R1", "5.00"))
        uow.commit()

    assert (created, created_again, created_theirs) == (True, False, True)
    assert again == first and first.id is not None and theirs.id not in (first.id, second.id)
    assert (first.amount, first.status, first.answer) == (Decimal("10.00"), RefundStatus.PENDING, "")
    assert read(shop, lambda uow: uow.refunds.get(payment.id, "R1")) == first
    assert read(shop, lambda uow: uow.refunds.get(payment.id, "R3")) is None
    assert [r.out_request_no for r in read(shop, lambda uow: uow.refunds.for_payment(payment.id))] == [
        "R1",
        "R2",
    ]
    assert type(second.amount) is Decimal and str(second.amount) == "0.01"


def test_racing_refunds_with_one_request_number_make_one_row(shop):
    payment = paid(shop)

    results = race(shop, lambda uow: uow.refunds.add_once(a_refund(payment)))

    assert sorted(created for _, created in results) == [False] * (RACERS - 1) + [True]
    assert len({refund.id for refund, _ in results}) == 1
    assert len(read(shop, lambda uow: uow.refunds.for_payment(payment.id))) == 1


def test_refund_move_is_compare_and_set(shop):
    payment = paid(shop)
    with shop.uow() as uow:
        refund, _ = uow.refunds.add_once(a_refund(payment))
        done = datetime(2024, 5, 1, 12, 50)
        assert uow.refunds.move(
            refund.id,
            RefundStatus.PENDING,
            RefundStatus.SUCCEEDED,
            update_time=done,
            answer='{"fund_change": "Y"}',
        )
        assert not uow.refunds.move(refund.id, RefundStatus.PENDING, RefundStatus.FAILED, update_time=done)
        uow.commit()

    now = read(shop, lambda uow: uow.refunds.get(payment.id, "R1"))
    assert (now.status, now.update_time, now.answer) == (RefundStatus.SUCCEEDED, done, '{"fund_change": "Y"}')
    with shop.uow() as uow:  # a move without an answer keeps the one there
        other, _ = uow.refunds.add_once(a_refund(payment, "R2"))
        assert uow.refunds.move(
            other.id, RefundStatus.PENDING, RefundStatus.FAILED, update_time=done, answer="refused"
        )
        assert uow.refunds.move(other.id, RefundStatus.FAILED, RefundStatus.PENDING, update_time=done)
        uow.commit()
    assert read(shop, lambda uow: uow.refunds.get(payment.id, "R2")).answer == "refused"


def test_a_refund_note_changes_the_answer_only_while_the_status_holds(shop):
    payment = paid(shop)
    with shop.uow() as uow:
        refund, _ = uow.refunds.add_once(a_refund(payment))
        noted = datetime(2024, 5, 1, 12, 50)
        assert uow.refunds.note(refund.id, RefundStatus.PENDING, update_time=noted, answer="no answer yet")
        uow.commit()
    now = read(shop, lambda uow: uow.refunds.get(payment.id, "R1"))
    assert (now.status, now.update_time, now.answer) == (RefundStatus.PENDING, noted, "no answer yet")
    with shop.uow() as uow:
        assert not uow.refunds.note(refund.id, RefundStatus.FAILED, update_time=CREATED, answer="stale")
        assert not uow.refunds.note(
            refund.id + 1000, RefundStatus.PENDING, update_time=CREATED, answer="none"
        )
        uow.commit()
    assert read(shop, lambda uow: uow.refunds.get(payment.id, "R1")) == now


# orders


def test_order_get_with_items_and_exact_amounts(shop):
    order = read(shop, lambda uow: uow.orders.get(SN))

    expected = an_order()
    assert (order.order_sn, order.member_id, order.status) == (SN, MEMBER, OrderStatus.AWAITING_PAYMENT)
    assert order.status is OrderStatus.AWAITING_PAYMENT
    assert (order.integration, order.growth) == (123, 45)
    assert order.items == expected.items
    assert type(order.pay_amount) is Decimal and str(order.pay_amount) == "123.45"
    assert [str(item.price) for item in order.items] == ["100.05", "11.70"]
    assert read(shop, lambda uow: uow.orders.get("nope")) is None


def test_order_move_is_compare_and_set(shop):
    with shop.uow() as uow:
        assert uow.orders.move(SN, OrderStatus.AWAITING_PAYMENT, OrderStatus.AWAITING_SHIPMENT)
        assert not uow.orders.move(SN, OrderStatus.AWAITING_PAYMENT, OrderStatus.CLOSED)
        assert not uow.orders.move("nope", OrderStatus.AWAITING_PAYMENT, OrderStatus.AWAITING_SHIPMENT)
        uow.commit()

    assert read(shop, lambda uow: uow.orders.get(SN)).status is OrderStatus.AWAITING_SHIPMENT


def test_an_orders_status_is_read_alone(shop):
    assert read(shop, lambda uow: uow.orders.status(SN)) is OrderStatus.AWAITING_PAYMENT
    with shop.uow() as uow:
        uow.orders.move(SN, OrderStatus.AWAITING_PAYMENT, OrderStatus.CLOSED)
        assert uow.orders.status(SN) is OrderStatus.CLOSED  # this transaction's own change
        uow.commit()
    assert read(shop, lambda uow: uow.orders.status(SN)) is OrderStatus.CLOSED
    assert read(shop, lambda uow: uow.orders.status("nope")) is None


def test_an_orders_status_after_its_payment_was_read_is_what_the_transaction_sees(shop):
    """The SQL store reads the order's status with the payment (one round trip): asked for it
    then, it answers that one, and this transaction's own move of the order after."""
    payment = stored(shop, a_payment(out_trade_no="T-STATUS"))
    with shop.uow() as uow:
        assert uow.payments.by_trade("alipay", "T-STATUS") == payment
        assert uow.orders.status(SN) is OrderStatus.AWAITING_PAYMENT
        assert uow.orders.move(SN, OrderStatus.AWAITING_PAYMENT, OrderStatus.CLOSED)
        assert uow.orders.status(SN) is OrderStatus.CLOSED
        uow.commit()
    with shop.uow() as uow:
        assert uow.payments.by_trade("alipay", "T-STATUS") == payment
        assert uow.orders.status(SN) is OrderStatus.CLOSED  # another transaction's commit
    orphan = stored(shop, a_payment(order_sn=OTHER_SN, out_trade_no="T-ORPHAN"))  # no such order
    assert read(
        shop, lambda uow: (uow.payments.by_trade("alipay", "T-ORPHAN"), uow.orders.status(OTHER_SN))
    ) == (
        orphan,
        None,
    )


def test_orders_awaiting_payment_since_a_time_oldest_first(shop):
    base = datetime(2024, 5, 1, 12, 0)
    for n, minutes in enumerate((30, 10, 20, 40)):
        order = an_order(order_sn=f"EXP{n}")
        order.create_time = base.replace(minute=minutes)
        shop.add_order(order)
    paid = an_order(order_sn="EXPPAID", status=OrderStatus.AWAITING_SHIPMENT)
    paid.create_time = base
    shop.add_order(paid)

    def due(before, limit=10):
        return read(shop, lambda uow: uow.orders.awaiting_payment_since(before, limit))

    assert due(base.replace(minute=35)) == ["EXP1", "EXP2", "EXP0"]
    assert due(base.replace(minute=35), limit=2) == ["EXP1", "EXP2"]
    assert due(base.replace(minute=10)) == []
    assert read(shop, lambda uow: uow.orders.get("EXP1")).create_time == base.replace(minute=10)


# stock


def test_locks_move_and_deduct(shop):
    assert shop.stock_of(1) == (10, 1, 0)
    with shop.uow() as uow:
        locks = uow.stock.locks_for(SN)
        assert [(lock.order_sn, lock.sku_id, lock.quantity, lock.status) for lock in locks] == [
            (SN, 1, 1, LockStatus.LOCKED),
            (SN, 2, 2, LockStatus.LOCKED),
        ]
        assert uow.stock.locks_for("nope") == []
        assert uow.stock.move_lock(locks[1].id, LockStatus.LOCKED, LockStatus.DEDUCTED)
        assert not uow.stock.move_lock(locks[1].id, LockStatus.LOCKED, LockStatus.RELEASED)
        uow.stock.deduct(2, 2)
        uow.commit()

    assert [lock.status for lock in read(shop, lambda uow: uow.stock.locks_for(SN))] == [
        LockStatus.LOCKED,
        LockStatus.DEDUCTED,
    ]
    assert shop.stock_of(2) == (18, 0, 2)
    assert shop.stock_of(1) == (10, 1, 0)


def test_release_frees_locked_units_only(shop):
    with shop.uow() as uow:
        uow.stock.release(2, 2)
        uow.commit()
    assert shop.stock_of(2) == (20, 0, 0)
    assert shop.stock_of(1) == (10, 1, 0)


def test_deduct_release_and_credit_refuse_unknown_rows(shop):
    with shop.uow() as uow:
        with pytest.raises(LookupError):
            uow.stock.deduct(999, 1)
        with pytest.raises(LookupError):
            uow.stock.release(999, 1)
        with pytest.raises(LookupError):
            uow.points.credit(999, 1, 1)


# points


def test_claim_once(shop):
    with shop.uow() as uow:
        assert uow.points.claim(SN, MEMBER, 123, 45)
        assert not uow.points.claim(SN, MEMBER, 123, 45)
        uow.commit()

    assert not read(shop, lambda uow: uow.points.claim(SN, MEMBER, 123, 45))
    assert read(shop, lambda uow: uow.points.claim(OTHER_SN, MEMBER, 1, 1))


def test_claims_by_kind_and_their_entries(shop):
    with shop.uow() as uow:
        assert uow.points.entry(SN) is None
        assert uow.points.claim(SN, MEMBER, 123, 45)
        assert uow.points.claim(SN, MEMBER, 123, 45, kind=PointsKind.REVOKE)
        assert not uow.points.claim(SN, MEMBER, 1, 1, kind=PointsKind.REVOKE)
        uow.commit()

    award = read(shop, lambda uow: uow.points.entry(SN))
    revoke = read(shop, lambda uow: uow.points.entry(SN, PointsKind.REVOKE))
    assert (award.kind, award.member_id, award.integration, award.growth) == ("award", MEMBER, 123, 45)
    assert (revoke.kind, revoke.integration) == ("revoke", 123)
    assert read(shop, lambda uow: uow.points.entry(OTHER_SN, PointsKind.REVOKE)) is None


def test_racing_claims_award_once(shop):
    claims = race(shop, lambda uow: uow.points.claim(SN, MEMBER, 123, 45))

    assert sorted(claims) == [False] * (RACERS - 1) + [True]


def test_credit_adds(shop):
    with shop.uow() as uow:
        uow.points.credit(MEMBER, 123, 45)
        uow.points.credit(MEMBER, 7, 5)
        uow.points.credit(MEMBER, 0, 0)
        uow.commit()

    assert shop.points_of(MEMBER) == (130, 50)


# outbox


def test_outbox_oldest_first_until_sent(shop):
    sent = [events.payment_succeeded(SN, "alipay", "T1", Decimal("123.45")), events.order_paid(SN)]
    sent.append(events.order_paid(OTHER_SN))
    with shop.uow() as uow:
        for event in sent:
            uow.outbox.add(event)
        uow.commit()

    with shop.uow() as uow:
        first_two = uow.outbox.unsent(2)
        assert [message.event for message in first_two] == sent[:2]
        assert all(isinstance(message.created_at, datetime) for message in first_two)
        uow.outbox.mark_sent([message.id for message in first_two], datetime(2024, 5, 1, 12, 32))
        uow.commit()

    left = read(shop, lambda uow: uow.outbox.unsent(10))
    assert [message.event for message in left] == sent[2:]
    assert left[0].event.data == {}
    assert first_two[0].event.data == {"provider": "alipay", "trade_no": "T1", "amount": "123.45"}


# the notify log


def a_record(provider="alipay", notify_id="N1", accepted=True, **fields) -> NotificationRecord:
    values = {
        "received_at": CREATED,
        "raw": "notify_id=N1&subject=%E6%89%8B%E6%9C%BA&sign=abc%2B%2F%3D",
        "verified": True,
        "outcome": "paid" if accepted else "amount_mismatch",
        "out_trade_no": SN,
        **fields,
    }
    return NotificationRecord(provider=provider, notify_id=notify_id, accepted=accepted, **values)


def test_notification_log_keeps_every_record_as_given(shop):
    with shop.uow() as uow:
        first = uow.notifications.add(a_record(detail="", replay_of=None))
        second = uow.notifications.add(
            a_record(
                notify_id=None,
                accepted=False,
                verified=False,
                detail="x" * 500,
                raw="a=" + "长" * 5000,
                replay_of=first.id,
                source="query",
            )
        )
        uow.commit()

    assert first.id is not None and second.id is not None and first.id != second.id
    assert read(shop, lambda uow: uow.notifications.get(first.id)) == first
    assert read(shop, lambda uow: uow.notifications.get(second.id)) == second
    assert read(shop, lambda uow: uow.notifications.get(second.id + 1000)) is None


def test_notification_log_finds_the_first_accepted_copy_of_a_notify_id(shop):
    with shop.uow() as uow:
        uow.notifications.add(a_record(notify_id="N1", accepted=False))
        accepted = uow.notifications.add(a_record(notify_id="N1"))
        uow.notifications.add(a_record(notify_id="N1", outcome="duplicate"))
        uow.notifications.add(a_record(provider="mockpay", notify_id="N2"))
        uow.commit()

    assert read(shop, lambda uow: uow.notifications.accepted("alipay", "N1")) == accepted
    assert read(shop, lambda uow: uow.notifications.accepted("mockpay", "N1")) is None
    assert read(shop, lambda uow: uow.notifications.accepted("alipay", "N2")) is None


def test_notification_log_lists_newest_first(shop):
    with shop.uow() as uow:
        ids = [
            uow.notifications.add(a_record(provider=p, notify_id=f"N{i}")).id
            for i, p in enumerate(["alipay", "mockpay", "alipay", "alipay"])
        ]
        uow.commit()

    assert [r.id for r in read(shop, lambda uow: uow.notifications.recent(10))] == ids[::-1]
    assert [r.id for r in read(shop, lambda uow: uow.notifications.recent(2, "alipay"))] == [ids[3], ids[2]]
    assert read(shop, lambda uow: uow.notifications.recent(5, "wechat")) == []


# the outbox's redelivery


def test_outbox_add_returns_the_id_unsent_selects_by(shop):
    with shop.uow() as uow:
        ids = [uow.outbox.add(events.order_paid(sn)) for sn in (SN, OTHER_SN, "third")]
        uow.commit()

    assert len(set(ids)) == 3 and all(isinstance(i, int) for i in ids)
    chosen = read(shop, lambda uow: uow.outbox.unsent(10, ids=[ids[2], ids[0]]))
    assert [(m.id, m.event.order_sn, m.sent_at) for m in chosen] == [
        (ids[0], SN, None),
        (ids[2], "third", None),
    ]
    assert read(shop, lambda uow: uow.outbox.unsent(10, ids=[])) == []


def test_outbox_unsettled_are_the_sent_ones_until_settled(shop):
    with shop.uow() as uow:
        early, late, never = (uow.outbox.add(events.order_paid(sn)) for sn in (SN, OTHER_SN, "third"))
        uow.outbox.mark_sent([early], datetime(2024, 5, 1, 12, 0))
        uow.outbox.mark_sent([late], datetime(2024, 5, 1, 12, 10))
        uow.commit()

    def unsettled(before):
        return [(m.id, m.sent_at) for m in read(shop, lambda uow: uow.outbox.unsettled(before, 10))]

    assert unsettled(datetime(2024, 5, 1, 12, 5)) == [(early, datetime(2024, 5, 1, 12, 0))]
    assert unsettled(datetime(2024, 5, 1, 13)) == [
        (early, datetime(2024, 5, 1, 12, 0)),
        (late, datetime(2024, 5, 1, 12, 10)),
    ]
    assert [m.id for m in read(shop, lambda uow: uow.outbox.unsettled(datetime(2024, 5, 1, 13), 1))] == [
        early
    ]

    with shop.uow() as uow:
        uow.outbox.mark_sent([early], datetime(2024, 5, 1, 12, 30))  # sent again: the clock restarts
        uow.outbox.settle([late], datetime(2024, 5, 1, 12, 31))
        uow.commit()

    assert unsettled(datetime(2024, 5, 1, 12, 20)) == []
    assert unsettled(datetime(2024, 5, 1, 13)) == [(early, datetime(2024, 5, 1, 12, 30))]
    assert [m.id for m in read(shop, lambda uow: uow.outbox.unsent(10))] == [never]


# events leave with the commit


def test_a_unit_of_work_hands_the_events_it_committed_over_once_as_it_ends(shop):
    handed = []
    uow = relayed(shop.uow, lambda *ids: handed.append(ids))
    with uow() as unit:
        first = unit.outbox.add(events.order_paid(SN))
        unit.commit()
        second = unit.outbox.add(events.order_paid(OTHER_SN))
        unit.commit()
        unit.outbox.add(events.order_paid("rolled back"))
        assert handed == []
    assert handed == [(first, second)]
    assert [m.id for m in read(shop, lambda unit: unit.outbox.unsent(10))] == [first, second]

    with uow() as unit:  # nothing committed: nothing handed over
        unit.outbox.add(events.order_paid("never committed"))
    with pytest.raises(RuntimeError), uow() as unit:
        unit.outbox.add(events.order_paid("failed"))
        raise RuntimeError("the change failed half way")
    assert handed == [(first, second)]
    assert [m.id for m in read(shop, lambda unit: unit.outbox.unsent(10))] == [first, second]


# fulfilment trace


def test_trace_keeps_entries_per_order_oldest_first(shop):
    with shop.uow() as uow:
        uow.trace.record(SN, "mark_order_paid", "done", "status 0 -> 1")
        uow.trace.record(OTHER_SN, "award_points", "failed", "attempt 1: 积分服务 down")
        uow.trace.record(SN, "award_points", "dead", "x" * 600)
        assert [e.outcome for e in uow.trace.for_order(SN)] == ["done", "dead"]  # seen inside the unit
        uow.commit()

    mine = read(shop, lambda uow: uow.trace.for_order(SN))
    assert [(e.order_sn, e.step, e.outcome) for e in mine] == [
        (SN, "mark_order_paid", "done"),
        (SN, "award_points", "dead"),
    ]
    assert mine[0].detail == "status 0 -> 1" and mine[1].detail == "x" * DETAIL_LENGTH
    assert all(isinstance(e.at, datetime) for e in mine) and mine[0].at <= mine[1].at
    [theirs] = read(shop, lambda uow: uow.trace.for_order(OTHER_SN))
    assert theirs.detail == "attempt 1: 积分服务 down"
    assert read(shop, lambda uow: uow.trace.for_order("nope")) == []


# a unit of work without commit leaves no trace


def _move_first_lock_and_deduct(uow):
    lock = uow.stock.locks_for(SN)[0]
    uow.stock.move_lock(lock.id, LockStatus.LOCKED, LockStatus.DEDUCTED)
    uow.stock.deduct(lock.sku_id, lock.quantity)


#: kind of change -> (make it, observe what it changes)
CHANGES = {
    "add payment": (
        lambda uow: uow.payments.add_once(a_payment(provider="mockpay")),
        lambda backend, uow: [p.payment_type for p in uow.payments.for_order(SN)],
    ),
    "move payment": (
        lambda uow: uow.payments.move(
            uow.payments.find(SN, "alipay").id, PaymentStatus.UNPAID, PaymentStatus.PAID, trade_no="T1"
        ),
        lambda backend, uow: uow.payments.find(SN, "alipay").payment_status,
    ),
    "move order": (
        lambda uow: uow.orders.move(SN, OrderStatus.AWAITING_PAYMENT, OrderStatus.AWAITING_SHIPMENT),
        lambda backend, uow: uow.orders.get(SN).status,
    ),
    "add event": (
        lambda uow: uow.outbox.add(events.order_paid(SN)),
        lambda backend, uow: uow.outbox.unsent(10),
    ),
    "record trace": (
        lambda uow: uow.trace.record(SN, "award_points", "done"),
        lambda backend, uow: uow.trace.for_order(SN),
    ),
    "claim points": (
        lambda uow: uow.points.claim(SN, MEMBER, 123, 45),
        lambda backend, uow: backend.awarded(SN, uow),
    ),
    "credit points": (
        lambda uow: uow.points.credit(MEMBER, 123, 45),
        lambda backend, uow: backend.points_of(MEMBER, uow),
    ),
    "settle order": (
        lambda uow: uow.payments.settle_order(SN, uow.payments.find(SN, "alipay").id),
        lambda backend, uow: uow.payments.settled_by(SN),
    ),
    "schedule query": (
        lambda uow: uow.payments.schedule_query(uow.payments.find(SN, "alipay").id, 0, 1, CREATED),
        lambda backend, uow: uow.payments.find(SN, "alipay").query_attempts,
    ),
    "mark owed and flag": (
        lambda uow: (
            uow.payments.mark_owed(uow.payments.find(SN, "alipay").id, "paid_twice"),
            uow.payments.set_flag(uow.payments.find(SN, "alipay").id, "look"),
        ),
        lambda backend, uow: (
            uow.payments.find(SN, "alipay").refund_reason,
            uow.payments.find(SN, "alipay").flag,
        ),
    ),
    "reserve and settle a refund": (
        lambda uow: (
            uow.payments.move(uow.payments.find(SN, "alipay").id, PaymentStatus.UNPAID, PaymentStatus.PAID),
            uow.payments.reserve_refund(uow.payments.find(SN, "alipay").id, Decimal("1.00")),
            uow.payments.add_refunded(uow.payments.find(SN, "alipay").id, Decimal("1.00")),
        ),
        lambda backend, uow: (
            uow.payments.find(SN, "alipay").refund_reserved,
            uow.payments.find(SN, "alipay").refunded,
        ),
    ),
    "add refund": (
        lambda uow: uow.refunds.add_once(a_refund(uow.payments.find(SN, "alipay"))),
        lambda backend, uow: uow.refunds.for_payment(uow.payments.find(SN, "alipay").id),
    ),
    "revoke points": (
        lambda uow: uow.points.claim(SN, MEMBER, 1, 1, kind=PointsKind.REVOKE),
        lambda backend, uow: uow.points.entry(SN, PointsKind.REVOKE),
    ),
    "log notification": (
        lambda uow: uow.notifications.add(a_record()),
        lambda backend, uow: uow.notifications.recent(10),
    ),
    "release stock": (
        lambda uow: uow.stock.release(1, 1),
        lambda backend, uow: backend.stock_of(1, uow),
    ),
    "deduct stock": (
        _move_first_lock_and_deduct,
        lambda backend, uow: ([lock.status for lock in uow.stock.locks_for(SN)], backend.stock_of(1, uow)),
    ),
}


@pytest.mark.parametrize("kind", CHANGES)
def test_no_commit_no_trace(shop, kind):
    change, observe = CHANGES[kind]
    stored(shop, a_payment())
    with shop.uow() as uow:
        before = observe(shop, uow)
        change(uow)
        assert observe(shop, uow) != before  # the change was made, inside the unit of work

    with shop.uow() as uow:
        assert observe(shop, uow) == before


def test_rollback_discards_and_leaves_the_unit_usable(shop):
    with shop.uow() as uow:
        uow.payments.add_once(a_payment())
        uow.rollback()
        assert uow.payments.find(SN, "alipay") is None
        uow.orders.move(SN, OrderStatus.AWAITING_PAYMENT, OrderStatus.CLOSED)
        uow.commit()

    assert read(shop, lambda uow: uow.payments.find(SN, "alipay")) is None
    assert read(shop, lambda uow: uow.orders.get(SN)).status is OrderStatus.CLOSED


# money


@pytest.mark.parametrize("amount", ["0.01", "0.10", "123.45", "99999999.99"])
def test_money_round_trips_as_decimal(shop, amount):
    shop.add_order(an_order(order_sn=OTHER_SN, pay_amount=amount))
    payment = stored(shop, a_payment(order_sn=OTHER_SN, amount=amount))

    with shop.uow() as uow:
        for value in (
            payment.total_amount,
            uow.payments.find(OTHER_SN, "alipay").total_amount,
            uow.payments.by_trade("alipay", OTHER_SN).total_amount,
            uow.orders.get(OTHER_SN).pay_amount,
        ):
            assert type(value) is Decimal
            assert str(value) == amount
