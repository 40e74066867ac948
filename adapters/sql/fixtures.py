"""Arrange members, stock and orders as the shop's other services would, for tests and demos.

Same names and shapes as ``InMemoryDatabase.add_member/add_sku/add_order``, so one piece of
arranging code serves both stores. Each call commits ``db.session`` of the current app context.
"""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import update

from ...core import model
from .models import Member, Order, OrderItem, StockLock, WareSku, db


def add_member(member_id: int, username: str, password_hash: str = "x") -> Member:
    member = Member(id=member_id, username=username, password_hash=password_hash)
    db.session.add(member)
    db.session.commit()
    return member


def add_sku(sku_id: int, sku_name: str, stock: int, price: Decimal = Decimal("10.00")) -> WareSku:
    sku = WareSku(sku_id=sku_id, sku_name=sku_name, stock=stock, price=price)
    db.session.add(sku)
    db.session.commit()
    return sku


def add_order(order: model.Order, locks=()) -> None:
    """Store ``order`` with its items and lock ``[(sku_id, quantity)]`` of stock for it."""
    now = datetime.now()
    db.session.add(
        Order(
            id=order.id,
            order_sn=order.order_sn,
            member_id=order.member_id,
            status=int(order.status),
            total_amount=order.pay_amount,
            pay_amount=order.pay_amount,
            integration=order.integration,
            growth=order.growth,
            create_time=order.create_time or now,
            items=[
                OrderItem(
                    order_sn=order.order_sn,
                    sku_id=item.sku_id,
                    sku_name=item.sku_name,
                    sku_price=item.price,
                    sku_quantity=item.quantity,
                )
                for item in order.items
            ],
        )
    )
    for sku_id, quantity in locks:
        db.session.add(
            StockLock(
                order_sn=order.order_sn,
                sku_id=sku_id,
                quantity=quantity,
                status=int(model.LockStatus.LOCKED),
                create_time=now,
            )
        )
        db.session.execute(
            update(WareSku).where(WareSku.sku_id == sku_id).values(stock_locked=WareSku.stock_locked + quantity)
        )
    db.session.commit()
