"""The sale and seckill-order stores' contract, in process, on SQLite and on MariaDB."""

import contextlib
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from support.races import race

from gmall_payment.core.closing import OrderClosing
from gmall_payment.core.model import LockStatus, Order, OrderItem, OrderStatus
from gmall_payment.core.seckill import (
    Creation,
    InvalidSale,
    Reservation,
    Sale,
    SeckillOrder,
    SeckillOrderRecord,
    SeckillOrderStatus,
)

SKU = 1001
START = datetime(2024, 11, 11, 20, 0, 0)
END = START + timedelta(hours=1)
PAY_WITHIN = timedelta(minutes=30)
PRICE = Decimal("4999.00")
RACERS = 8


@pytest.fixture
def sale(shop):
    """Members 1..3, SKU 1001 with 100 units in stock, and a sale of 10 of them."""
    for member_id in (1, 2, 3):
        shop.backend.add_member(member_id, f"member{member_id}")
    shop.backend.add_sku(SKU, "华为 Mate 60", 100)
    return shop.sales.add(Sale(SKU, "华为 Mate 60 秒杀", PRICE, 10, START, END))


def reservation(sale, member_id=1, n=1, at=START + timedelta(seconds=1), generation=0) -> Reservation:
    return Reservation(
        f"2024111120000{n:013d}",
        member_id,
        sale.sku_id,
        sale.id,
        at,
        receipt=f"{n}-0",
        deliveries=2,
        generation=generation,
    )


def seckill_order(sale, member_id=1, n=1, sku_id=SKU, **fields) -> SeckillOrder:
    r = reservation(sale, member_id, n, **fields)
    order = Order(
        r.order_sn,
        member_id,
        OrderStatus.AWAITING_PAYMENT,
        sale.price,
        items=[OrderItem(sku_id, sale.title, 1, sale.price)],
    )
    return SeckillOrder(r, order, r.reserved_at + PAY_WITHIN)


def bare(r: Reservation) -> Reservation:
    return Reservation(r.order_sn, r.member_id, r.sku_id, r.sale_id, r.reserved_at)


def members(shop, *member_ids):
    for member_id in member_ids:
        shop.backend.add_member(member_id, f"member{member_id}")


DUE = START + timedelta(seconds=1) + PAY_WITHIN


# sales


def test_sales_are_stored_with_an_id_and_found_by_time(shop):
    shop.backend.add_sku(SKU, "华为 Mate 60", 100)
    shop.backend.add_sku(2002, "小米 14", 100)
    first = shop.sales.add(Sale(SKU, "秒杀一", Decimal("1.00"), 5, START, END))
    later = shop.sales.add(Sale(2002, "秒杀二", Decimal("2.50"), 3, END, END + timedelta(hours=1)))

    assert first.id is not None and later.id not in (None, first.id)
    assert shop.sales.get(first.id) == first
    assert shop.sales.get(first.id).price == Decimal("1.00")
    assert shop.sales.get(later.id + 1000) is None
    assert shop.sales.overlapping(START - timedelta(hours=1), START) == []
    assert shop.sales.overlapping(START, END) == [first]
    assert shop.sales.overlapping(END - timedelta(seconds=1), END + timedelta(seconds=1)) == [first, later]


def test_a_sale_of_a_sku_without_stock_is_refused(shop):
    with pytest.raises(InvalidSale, match="no stock row"):
        shop.sales.add(Sale(3003, "nothing to lock", Decimal("1.00"), 5, START, END))
    assert shop.sales.overlapping(START, END) == []


# making orders


def test_create_makes_an_awaiting_order_with_one_item_and_its_stock_lock(shop, sale):
    results = shop.orders.create([seckill_order(sale, 1, n=1), seckill_order(sale, 2, n=2)])

    sn = reservation(sale, 1, n=1).order_sn
    assert results == {sn: Creation.CREATED, reservation(sale, 2, n=2).order_sn: Creation.CREATED}
    order = shop.order(sn)
    assert (order.member_id, order.status, order.pay_amount) == (1, OrderStatus.AWAITING_PAYMENT, PRICE)
    assert [(i.sku_id, i.sku_name, i.quantity, i.price) for i in order.items] == [
        (SKU, "华为 Mate 60 秒杀", 1, PRICE)
    ]
    assert [(lock.sku_id, lock.quantity, lock.status) for lock in shop.locks(sn)] == [
        (SKU, 1, LockStatus.LOCKED)
    ]
    assert shop.stock_of(SKU) == (100, 2, 0)
    assert shop.orders.get(sn) == SeckillOrderRecord(
        bare(reservation(sale, 1, n=1)), SeckillOrderStatus.CREATED, DUE
    )
    assert shop.orders.get("nope") is None
    assert shop.orders.held(sale.id) == 2


def test_create_is_idempotent_on_the_order_number(shop, sale):
    shop.orders.create([seckill_order(sale)])
    again = shop.orders.create([seckill_order(sale), seckill_order(sale, 2, n=2)])

    assert list(again.values()) == [Creation.EXISTS, Creation.CREATED]
    assert shop.stock_of(SKU) == (100, 2, 0)
    assert shop.orders.held(sale.id) == 2


def test_a_member_holding_an_order_of_the_sale_gets_no_second_one(shop, sale):
    shop.orders.create([seckill_order(sale, 1, n=1)])
    results = shop.orders.create(
        [seckill_order(sale, 1, n=2), seckill_order(sale, 2, n=3), seckill_order(sale, 2, n=4)]
    )

    assert list(results.values()) == [Creation.CONFLICT, Creation.CREATED, Creation.CONFLICT]
    assert shop.order(reservation(sale, n=2).order_sn) is None
    assert shop.orders.held(sale.id) == 2


def test_create_is_all_or_nothing(shop, sale):
    with pytest.raises(LookupError):
        shop.orders.create([seckill_order(sale, 1, n=1), seckill_order(sale, 2, n=2, sku_id=9999)])

    assert shop.order(reservation(sale, n=1).order_sn) is None
    assert shop.orders.get(reservation(sale, n=1).order_sn) is None
    assert shop.stock_of(SKU) == (100, 0, 0)
    assert shop.orders.create([seckill_order(sale, 1, n=1)]) == {
        reservation(sale, n=1).order_sn: Creation.CREATED
    }


def test_racing_creators_make_one_order_per_member_and_sale(shop, sale):
    @contextlib.contextmanager
    def connected():
        with shop.context():
            shop.orders.get("warm-up")  # connected before the start, so the racers overlap
            yield

    def create(i):
        try:
            return shop.orders.create([seckill_order(sale, 1, n=i + 1)])
        except Exception:  # a lost race may surface as an error: the service retries one by one
            return shop.orders.create([seckill_order(sale, 1, n=i + 1)])

    results = [r for result in race(RACERS, create, inside=connected) for r in result.values()]

    assert sorted(results, key=lambda r: r.value) == [Creation.CONFLICT] * (RACERS - 1) + [Creation.CREATED]
    assert shop.orders.held(sale.id) == 1
    assert shop.stock_of(SKU) == (100, 1, 0)


# the count of units sold, the database's own guard


def test_a_batch_gets_units_only_as_far_as_the_sale_has_them_the_first_reserved_first(shop, sale):
    members(shop, *range(4, 13))
    shop.orders.create([seckill_order(sale, m, n=m) for m in range(1, 9)])

    results = shop.orders.create([seckill_order(sale, m, n=m) for m in range(9, 13)])

    assert list(results.values()) == [Creation.CREATED] * 2 + [Creation.REFUSED] * 2
    assert shop.order(reservation(sale, 11, n=11).order_sn) is None
    assert (
        shop.orders.get(reservation(sale, 11, n=11).order_sn) is None
    )  # nothing recorded: the caller abandons it
    assert shop.orders.held(sale.id) == 10 and shop.stock_of(SKU) == (100, 10, 0)
    assert shop.orders.create([seckill_order(sale, 11, n=13)]) == {
        reservation(sale, n=13).order_sn: Creation.REFUSED
    }


def test_a_unit_freed_by_a_closed_order_is_sold_again(shop, sale):
    members(shop, *range(4, 12))
    shop.orders.create([seckill_order(sale, m, n=m) for m in range(1, 11)])
    close(shop, reservation(sale, 1, n=1).order_sn)
    assert shop.orders.create([seckill_order(sale, 11, n=11)]) == {
        reservation(sale, n=11).order_sn: Creation.REFUSED
    }  # closed, but its unit not released yet

    shop.orders.release(reservation(sale, 1, n=1).order_sn)

    assert shop.orders.create([seckill_order(sale, 11, n=12)]) == {
        reservation(sale, n=12).order_sn: Creation.CREATED
    }
    assert shop.orders.held(sale.id) == 10


def test_each_load_is_a_new_generation_with_the_units_and_holders_the_database_knows(shop, sale):
    loads = []

    def into(loaded, units, holders):
        loads.append((loaded.generation, units, holders))
        return True

    assert shop.orders.load(sale, into) is True
    first = shop.sales.get(sale.id)
    assert first.generation == 1 and loads == [(1, 10, {})]
    assert shop.orders.load(sale, into) is False  # another load came first: nothing done
    assert len(loads) == 1 and shop.sales.get(sale.id).generation == 1

    made = shop.orders.create([seckill_order(sale, 1, n=1, generation=1)])
    stale = shop.orders.create([seckill_order(sale, 2, n=2, generation=0)])
    assert list(made.values()) == [Creation.CREATED] and list(stale.values()) == [Creation.REFUSED]

    assert shop.orders.load(first, into) is True
    assert loads[-1] == (2, 9, {1: reservation(sale, 1, n=1).order_sn})
    assert list(shop.orders.create([seckill_order(sale, 2, n=3, generation=1)]).values()) == [
        Creation.REFUSED
    ]


def test_a_load_that_fails_records_no_generation(shop, sale):
    def failing(loaded, units, holders):
        raise ConnectionError("the gate is down")

    with pytest.raises(ConnectionError):
        shop.orders.load(sale, failing)

    assert shop.sales.get(sale.id).generation == 0
    assert list(shop.orders.create([seckill_order(sale, 1, n=1)]).values()) == [Creation.CREATED]


# abandoning


def test_abandon_settles_a_reservation_without_an_order(shop, sale):
    abandoned = reservation(sale, 1, n=1)

    assert shop.orders.abandon(abandoned) is True
    assert shop.orders.abandon(abandoned) is False
    assert shop.orders.get(abandoned.order_sn) == SeckillOrderRecord(
        bare(abandoned), SeckillOrderStatus.ABANDONED, None
    )
    assert shop.orders.create([seckill_order(sale, 1, n=1)]) == {abandoned.order_sn: Creation.EXISTS}
    assert shop.order(abandoned.order_sn) is None
    assert shop.orders.unreturned(10) == [bare(abandoned)]
    assert shop.orders.held(sale.id) == 0

    shop.orders.create([seckill_order(sale, 2, n=2)])
    assert shop.orders.abandon(reservation(sale, 2, n=2)) is False  # its order exists


def test_a_reservation_abandoned_with_nothing_to_give_back_is_not_listed_to_give_back(shop, sale):
    assert shop.orders.abandon(reservation(sale, 1, n=1), returned_at=DUE) is True
    assert shop.orders.get(reservation(sale, 1, n=1).order_sn).status is SeckillOrderStatus.ABANDONED
    assert shop.orders.unreturned(10) == []


# closed orders


def close(shop, order_sn):
    """Close the order as anyone closing an order does (``core.closing``)."""
    with shop.context():
        assert OrderClosing(shop.backend.uow).close(order_sn, "test")


def test_due_lists_orders_still_awaiting_payment_past_their_time(shop, sale):
    shop.orders.create(
        [seckill_order(sale, 1, n=1), seckill_order(sale, 2, n=2), seckill_order(sale, 3, n=3)]
    )
    first, second, third = (reservation(sale, m, n=m).order_sn for m in (1, 2, 3))
    with shop.backend.uow() as uow:
        uow.orders.move(third, OrderStatus.AWAITING_PAYMENT, OrderStatus.AWAITING_SHIPMENT)  # paid
        uow.commit()

    assert shop.orders.due(DUE - timedelta(microseconds=1), 10) == []
    assert shop.orders.due(DUE, 10) == [first, second]
    assert shop.orders.due(DUE, 1) == [first]
    close(shop, first)
    assert shop.orders.due(DUE, 10) == [second]


def test_release_records_a_closed_order_once(shop, sale):
    shop.orders.create([seckill_order(sale, 1, n=1), seckill_order(sale, 2, n=2)])
    first = reservation(sale, 1, n=1)

    assert shop.orders.release(first.order_sn) is None  # its order is not closed
    assert shop.orders.held(sale.id) == 2
    close(shop, first.order_sn)
    assert shop.orders.held(sale.id) == 1  # a closed order holds no unit, released or not yet
    assert shop.orders.get(first.order_sn).status is SeckillOrderStatus.CREATED

    assert shop.orders.release(first.order_sn) == bare(first)
    assert shop.orders.release(first.order_sn) is None
    assert shop.orders.release("nope") is None
    assert shop.orders.get(first.order_sn) == SeckillOrderRecord(bare(first), SeckillOrderStatus.CLOSED, DUE)
    assert shop.orders.held(sale.id) == 1
    assert shop.stock_of(SKU) == (100, 1, 0)
    assert [lock.status for lock in shop.locks(first.order_sn)] == [LockStatus.RELEASED]


def test_a_member_whose_order_closed_may_hold_a_new_one(shop, sale):
    shop.orders.create([seckill_order(sale, 1, n=1)])
    close(shop, reservation(sale, n=1).order_sn)
    shop.orders.release(reservation(sale, n=1).order_sn)

    assert shop.orders.create([seckill_order(sale, 1, n=2)]) == {
        reservation(sale, n=2).order_sn: Creation.CREATED
    }
    assert shop.orders.create([seckill_order(sale, 1, n=3)]) == {
        reservation(sale, n=3).order_sn: Creation.CONFLICT
    }
    assert shop.orders.held(sale.id) == 1


def test_units_to_give_back_are_listed_until_marked_returned(shop, sale):
    shop.orders.create([seckill_order(sale, 1, n=1), seckill_order(sale, 2, n=2)])
    close(shop, reservation(sale, 1, n=1).order_sn)
    assert shop.orders.unreturned(10) == []  # closed, but not released yet
    shop.orders.release(reservation(sale, 1, n=1).order_sn)
    shop.orders.abandon(reservation(sale, 3, n=3))

    assert shop.orders.unreturned(10) == [bare(reservation(sale, 1, n=1)), bare(reservation(sale, 3, n=3))]
    assert shop.orders.unreturned(1) == [bare(reservation(sale, 1, n=1))]
    shop.orders.mark_returned(reservation(sale, 1, n=1).order_sn, DUE)
    shop.orders.mark_returned(reservation(sale, 1, n=1).order_sn, DUE + timedelta(hours=1))
    assert shop.orders.unreturned(10) == [bare(reservation(sale, 3, n=3))]
