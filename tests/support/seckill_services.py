"""The flash sale arranged on the real services (tests/services): its SKU, members and sale,
settings for quick ticks, and members signed in by their session cookie."""

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert

from gmall_payment.adapters.sql import fixtures
from gmall_payment.adapters.sql.models import Member, db
from gmall_payment.core.seckill import Sale

SKU = 7001
#: Quick ticks, clicks limited only far above what the test sends (all come from 127.0.0.1).
SECKILL = {"SECKILL_TICK_SECONDS": 0.2, "SECKILL_RATE_LIMIT_IP": "100000/second",
           "SECKILL_RATE_LIMIT_MEMBER": "1000/second"}


def arrange(shop, members, units, stock=10_000):
    """``members`` members, SKU 7001 with stock, and a sale of ``units`` open for an hour."""
    with shop.app.app_context():
        db.session.execute(insert(Member.__table__), [{"id": m, "username": f"s{m}", "password_hash": "x"}
                                                      for m in range(1, members + 1)])
        db.session.commit()
        fixtures.add_sku(SKU, "秒杀 SKU", stock, Decimal("99.00"))
        now = datetime.now()
        sale = shop.services.seckill.create_sale(
            Sale(SKU, "秒杀 ¥9.90", Decimal("9.90"), units, now - timedelta(seconds=1), now + timedelta(hours=1)))
    return sale


def cookie(shop, member_id) -> str:
    return shop.app.session_interface.get_signing_serializer(shop.app).dumps({"member_id": member_id})
