"""The flash sale arranged on the real services (tests/services): its SKU, members and sale,
settings for quick ticks, and members signed in by their session cookie."""

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, select

from gmall_payment.adapters.sql import fixtures
from gmall_payment.adapters.sql.models import Member, Order, OrderItem, WareSku, db
from gmall_payment.adapters.sql.seckill import SeckillOrderRow
from gmall_payment.core.seckill import Sale, SeckillOrderStatus
from gmall_payment.webapp.context import EPOCH, MEMBER

SKU = 7001
#: Quick ticks, clicks limited only far above what the test sends (all come from 127.0.0.1).
SECKILL = {
    "SECKILL_TICK_SECONDS": 0.2,
    # Generous: a loaded machine stalls Redis's answers past the default's half second (503s),
    # which test_seckill_redis_stopped.py tests with its own.
    "SECKILL_REDIS_TIMEOUT_SECONDS": 5,
    "SECKILL_RATE_LIMIT_IP": "100000/second",
    "SECKILL_RATE_LIMIT_MEMBER": "1000/second",
}


def arrange(shop, members, units, stock=10_000):
    """``members`` members, SKU 7001 with stock, and a sale of ``units`` open for an hour."""
    with shop.app.app_context():
        db.session.execute(
            insert(Member.__table__),
            [{"id": m, "username": f"s{m}", "password_hash": "x"} for m in range(1, members + 1)],
        )
        db.session.commit()
        fixtures.add_sku(SKU, "秒杀 SKU", stock, Decimal("99.00"))
        now = datetime.now()
        sale = shop.services.seckill.create_sale(
            Sale(
                SKU,
                "秒杀 ¥9.90",
                Decimal("9.90"),
                units,
                now - timedelta(seconds=1),
                now + timedelta(hours=1),
            )
        )
    return sale


def cookie(shop, member_id) -> str:
    """The member's session cookie as the login view makes it (their first session generation)."""
    return shop.app.session_interface.get_signing_serializer(shop.app).dumps({MEMBER: member_id, EPOCH: 0})


def units_left(shop):
    return shop.services.seckill.gate.units_left(SKU)


def links(shop, status=SeckillOrderStatus.CREATED):
    """(member, order_sn) of the sale's seckill orders in ``status``."""
    with shop.app.app_context():
        return db.session.execute(
            select(SeckillOrderRow.member_id, SeckillOrderRow.order_sn).where(
                SeckillOrderRow.status == int(status)
            )
        ).all()


def orders_of_sku(shop):
    """(member, status) of every order holding the flash sale's SKU."""
    with shop.app.app_context():
        return db.session.execute(
            select(Order.member_id, Order.status)
            .join(OrderItem, OrderItem.order_id == Order.id)
            .where(OrderItem.sku_id == SKU)
        ).all()


def stock(shop):
    with shop.app.app_context():
        return tuple(
            db.session.execute(
                select(WareSku.stock, WareSku.stock_locked, WareSku.sales).where(WareSku.sku_id == SKU)
            ).one()
        )
