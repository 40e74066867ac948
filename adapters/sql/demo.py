"""Demo data for the embedded shop: members, SKUs with stock, orders awaiting payment.

It stands in for the order service, which would have created the orders and locked their
stock; running it again tops each member up to a few open orders and changes nothing else.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from ...core.model import Order, OrderItem, OrderStatus
from ...core.money import points_for
from ...core.ordersn import new_order_sn
from ...core.seckill import Sale
from . import fixtures
from .models import Member, WareSku, db
from .models import Order as OrderRow

OPEN_ORDERS_PER_MEMBER = 3


@dataclass(frozen=True)
class DemoMember:
    id: int
    username: str
    password: str


MEMBERS = (DemoMember(1, "demo", "demo123"), DemoMember(2, "alice", "alice123"))
SKUS = (
    (1001, "华为 Mate 60 Pro 12GB+512GB", Decimal("6999.00"), 100),
    (1002, "小米 14 16GB+1TB", Decimal("4999.00"), 100),
    (1003, "谷粒定制 帆布袋", Decimal("39.90"), 500),
)
#: The flash sale's SKU (only sold in the sale), and the sale: open from the moment
#: seed-demo makes it, for a week.
SALE_SKU = (1004, "华为 Mate 60 Pro 秒杀款", Decimal("6999.00"), 100)
SALE_TITLE, SALE_PRICE, SALE_UNITS, SALE_DAYS = "华为 Mate 60 Pro 秒杀", Decimal("1999.00"), 10, 7


def seed(seckill) -> int:
    """Make the demo data exist, with an open flash sale (``seckill``: the SeckillService);
    return how many orders were created."""
    for member in MEMBERS:
        if db.session.get(Member, member.id) is None:
            fixtures.add_member(member.id, member.username, generate_password_hash(member.password))
    for sku_id, name, price, stock in (*SKUS, SALE_SKU):
        if db.session.scalar(select(WareSku).where(WareSku.sku_id == sku_id)) is None:
            fixtures.add_sku(sku_id, name, stock, price)
    created = 0
    for member in MEMBERS:
        open_orders = db.session.scalar(
            select(func.count())
            .select_from(OrderRow)
            .where(OrderRow.member_id == member.id, OrderRow.status == OrderStatus.AWAITING_PAYMENT)
        )
        for n in range(open_orders, OPEN_ORDERS_PER_MEMBER):
            sku_id, name, price, _ = SKUS[n % len(SKUS)]
            quantity = 1 + n % 2
            amount = price * quantity
            order = Order(
                order_sn=new_order_sn(),
                member_id=member.id,
                status=OrderStatus.AWAITING_PAYMENT,
                pay_amount=amount,
                integration=points_for(amount),
                growth=points_for(amount),
                items=[OrderItem(sku_id, name, quantity, price)],
            )
            fixtures.add_order(order, [(sku_id, quantity)])
            created += 1
    db.session.commit()
    now = datetime.now()
    if not any(
        sale.sku_id == SALE_SKU[0] for sale in seckill.sales.overlapping(now, now + timedelta(days=SALE_DAYS))
    ):
        seckill.create_sale(
            Sale(SALE_SKU[0], SALE_TITLE, SALE_PRICE, SALE_UNITS, now, now + timedelta(days=SALE_DAYS))
        )
    return created
