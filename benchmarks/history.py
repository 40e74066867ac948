"""Cost that must not grow with history: the time and SQL statements of "my orders" (first and
a deep page), the operator's filters, expiry's due orders and the flash-sale tick's unreturned
units, as the tables grow (issue 14: 1,000 orders took 6,003 queries for one page).

On MariaDB (a database of its own, dropped afterwards), one member per size with 10, 1,000
and 10,000 orders (each paid, fulfilled and with its notification), then 1,000, 10,000 and
100,000 closed flash-sale orders whose units are back. Each figure is the median of
``--repeat`` calls after one warm-up; the ratio column is each size against the smallest,
measured in the same run (flat is 1.0). Prints the process's peak RSS last. Asserts nothing.

    .venv/bin/python benchmarks/history.py
    .venv/bin/python benchmarks/history.py --orders 10,1000 --closed 1000,10000 --repeat 3
"""

import argparse
import resource
import statistics
import time
from datetime import datetime, timedelta

from harness import Harness, add_service_options
from sqlalchemy import event, insert, select, text

from gmall_payment.adapters.sql import fixtures, queries
from gmall_payment.adapters.sql.demo import seed
from gmall_payment.adapters.sql.models import Member, db
from gmall_payment.adapters.sql.models import Order as OrderRow
from gmall_payment.adapters.sql.seckill import SqlSeckillOrders, link
from gmall_payment.adapters.sql.store import SqlUnitOfWork
from gmall_payment.core.seckill import SeckillOrderStatus


def grow_member(member_id: int, count: int) -> None:
    """A member with ``count`` paid and fulfilled orders (payments, notifications, locks, points, trace)."""
    db.session.add(Member(id=member_id, username=f"history{member_id}", password_hash="x"))
    db.session.commit()
    sns = [f"B{member_id:04d}{n:08d}" for n in range(count)]
    fixtures.add_paid_history(member_id, sns, datetime.now(), flagged_every=997)


def grow_closed(first: int, count: int) -> None:
    """``count`` more closed flash-sale orders whose units are back."""
    now = datetime.now()
    for start in range(first, first + count, 10_000):
        db.session.execute(
            insert(link),
            [
                {
                    "order_sn": f"C{n:010d}",
                    "sale_id": 1,
                    "member_id": 100_000 + n,
                    "sku_id": 1,
                    "status": int(SeckillOrderStatus.CLOSED),
                    "holding": None,
                    "reserved_time": now,
                    "returned_time": now,
                }
                for n in range(start, min(start + 10_000, first + count))
            ],
        )
    db.session.commit()


def measure(work, repeat: int) -> tuple[float, int]:
    """(median milliseconds, statements per call) of ``work`` after one warm-up call."""
    work()
    counted = []
    listener = lambda *_: counted.append(1)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            work()
            times.append((time.perf_counter() - started) * 1000)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return statistics.median(times), len(counted) // repeat


def report(title: str, rows: list) -> None:
    print(f"\n{title}")
    print(f"  {'size':>8} {'ms':>9} {'ratio':>6} {'queries':>8}")
    base = rows[0][1]
    for size, ms, statements in rows:
        print(f"  {size:>8,} {ms:>9.2f} {ms / base:>6.2f} {statements:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_service_options(parser)
    parser.add_argument("--orders", default="10,1000,10000", help="orders per member, comma-separated")
    parser.add_argument(
        "--closed", default="1000,10000,100000", help="closed flash-sale orders, comma-separated"
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(n) for n in args.orders.split(",")]
    closed_sizes = [int(n) for n in args.closed.split(",")]

    with Harness(args.mysql_url, args.redis_url) as h, h.app.app_context():
        seed(h.app.extensions["gmall"].seckill)

        def due_orders():
            with SqlUnitOfWork() as uow:
                uow.orders.awaiting_payment_since(datetime.now() - timedelta(minutes=30), 100)

        first, deep, flagged, due, total = [], [], [], [], 0
        for n, size in enumerate(sizes):
            member_id = 1000 + n
            grow_member(member_id, size)
            total += size
            db.session.execute(
                text("ANALYZE TABLE oms_order, oms_order_item, payment_info, payment_notification")
            )
            first.append((size, *measure(lambda m=member_id: queries.member_orders(m), args.repeat)))
            oldest = db.session.scalar(
                select(OrderRow.id).where(OrderRow.member_id == member_id).order_by(OrderRow.id).limit(1)
            )
            deep.append(
                (
                    size,
                    *measure(
                        lambda m=member_id, o=oldest: queries.member_orders(m, before=o + 21), args.repeat
                    ),
                )
            )
            flagged.append((total, *measure(lambda: queries.payments(attention="flagged"), args.repeat)))
            due.append((total, *measure(due_orders, args.repeat)))
        tick, grown = [], 0
        for size in closed_sizes:
            grow_closed(grown, size - grown)
            grown = size
            db.session.execute(text("ANALYZE TABLE sms_seckill_order"))
            tick.append((size, *measure(lambda: SqlSeckillOrders().unreturned(100), args.repeat)))

    report("my orders, first page (orders of the member)", first)
    report("my orders, the page of the member's oldest orders", deep)
    report("operator: flagged payments (payments in all)", flagged)
    report("expire: due orders (orders in all)", due)
    report("flash-sale tick: unreturned units (closed flash-sale orders)", tick)
    print(
        f"\npeak RSS of this process (the shop's web code in it): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()
