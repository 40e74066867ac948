"""Arrange members, stock and orders as the shop's other services would, for tests and demos.

Same names and shapes as ``InMemoryDatabase.add_member/add_sku/add_order``, so one piece of
arranging code serves both stores. Each call commits ``db.session`` of the current app context.
"""

from datetime import datetime
from decimal import Decimal

from ...core import model
from .models import Member, WareSku, db
from .orders import insert_orders


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
    insert_orders(db.session, [(order, locks)], datetime.now())
    db.session.commit()
