"""Tables of the shop as this service sees them (names from the seed's schema).

``db`` builds no engine here: Flask-SQLAlchemy creates it when an app calls ``init_app``.
"""

from decimal import Decimal

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.mysql import DATETIME
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from ...ports.store import DETAIL_LENGTH


class DecimalText(TypeDecorator):
    """Decimal kept as text: SQLite has no decimal type and would store a float."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else str(Decimal(value))

    def process_result_value(self, value, dialect):
        return None if value is None else Decimal(value)


# SQLite only auto-increments an INTEGER primary key; MySQL gets BIGINT as in the seed.
Id = BigInteger().with_variant(Integer(), "sqlite")
Money = Numeric(18, 4, asdecimal=True).with_variant(DecimalText(), "sqlite")
# MySQL's DATETIME drops fractions of a second unless asked to keep them.
Timestamp = DateTime().with_variant(DATETIME(fsp=6), "mysql", "mariadb")


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class PaymentInfo(db.Model):
    """The seed's payment_info, one row per order and provider."""

    __tablename__ = "payment_info"
    __table_args__ = (
        UniqueConstraint("order_sn", "payment_type", name="uq_payment_order_provider"),
        UniqueConstraint("payment_type", "out_trade_no", name="uq_payment_trade"),
    )

    id = db.Column(Id, primary_key=True, autoincrement=True)
    out_trade_no = db.Column(String(64), nullable=False)
    order_sn = db.Column(String(64), nullable=False)
    payment_type = db.Column(String(32), nullable=False, comment="provider name, e.g. alipay")
    trade_no = db.Column(String(64))
    total_amount = db.Column(Money, nullable=False)
    subject = db.Column(String(100))
    payment_status = db.Column(SmallInteger, nullable=False, default=0)
    create_time = db.Column(Timestamp, nullable=False)
    callback_time = db.Column(Timestamp)
    callback_content = db.Column(Text)


class Order(db.Model):
    __tablename__ = "oms_order"

    id = db.Column(Id, primary_key=True, autoincrement=True)
    order_sn = db.Column(String(64), nullable=False, unique=True)
    member_id = db.Column(Id, db.ForeignKey("ums_member.id"), nullable=False, index=True)
    status = db.Column(SmallInteger, nullable=False, default=0)
    total_amount = db.Column(Money, nullable=False)
    pay_amount = db.Column(Money, nullable=False)
    integration = db.Column(Integer, nullable=False, default=0)
    growth = db.Column(Integer, nullable=False, default=0)
    create_time = db.Column(Timestamp, nullable=False)
    items = db.relationship("OrderItem", order_by="OrderItem.id", lazy="selectin")


class OrderItem(db.Model):
    __tablename__ = "oms_order_item"

    id = db.Column(Id, primary_key=True, autoincrement=True)
    order_id = db.Column(Id, db.ForeignKey("oms_order.id"), nullable=False, index=True)
    order_sn = db.Column(String(64), nullable=False)
    sku_id = db.Column(Id, nullable=False)
    sku_name = db.Column(String(200), nullable=False)
    sku_price = db.Column(Money, nullable=False)
    sku_quantity = db.Column(Integer, nullable=False)


class WareSku(db.Model):
    """Stock of a SKU: what is on the shelf, what orders hold, what was sold."""

    __tablename__ = "wms_ware_sku"

    id = db.Column(Id, primary_key=True, autoincrement=True)
    sku_id = db.Column(Id, nullable=False, unique=True)
    sku_name = db.Column(String(200), nullable=False)
    price = db.Column(Money, nullable=False)
    stock = db.Column(Integer, nullable=False, default=0)
    stock_locked = db.Column(Integer, nullable=False, default=0)
    sales = db.Column(Integer, nullable=False, default=0)


class StockLock(db.Model):
    """Units an order holds; kept in the database because Redis here keeps nothing on disk."""

    __tablename__ = "wms_stock_lock"

    id = db.Column(Id, primary_key=True, autoincrement=True)
    order_sn = db.Column(String(64), nullable=False, index=True)
    sku_id = db.Column(Id, nullable=False)
    quantity = db.Column(Integer, nullable=False)
    status = db.Column(SmallInteger, nullable=False, default=0)
    create_time = db.Column(Timestamp, nullable=False)


class Member(db.Model):
    __tablename__ = "ums_member"

    id = db.Column(Id, primary_key=True, autoincrement=True)
    username = db.Column(String(64), nullable=False, unique=True)
    password_hash = db.Column(String(255), nullable=False)
    nickname = db.Column(String(64))
    integration = db.Column(Integer, nullable=False, default=0)
    growth = db.Column(Integer, nullable=False, default=0)


class PointsLedger(db.Model):
    """One row per order and kind of change; the unique key makes an award happen once."""

    __tablename__ = "ums_points_ledger"
    __table_args__ = (UniqueConstraint("order_sn", "kind", name="uq_points_order_kind"),)

    id = db.Column(Id, primary_key=True, autoincrement=True)
    order_sn = db.Column(String(64), nullable=False)
    kind = db.Column(String(16), nullable=False)
    member_id = db.Column(Id, nullable=False, index=True)
    integration = db.Column(Integer, nullable=False)
    growth = db.Column(Integer, nullable=False)
    create_time = db.Column(Timestamp, nullable=False)


class OutboxEvent(db.Model):
    """Events written with the change that caused them, sent after commit by the relay."""

    __tablename__ = "outbox_event"
    __table_args__ = (
        Index("ix_outbox_unsent", "sent_time", "id"),
        Index("ix_outbox_unsettled", "settled_time", "sent_time"),
    )

    id = db.Column(Id, primary_key=True, autoincrement=True)
    name = db.Column(String(64), nullable=False)
    order_sn = db.Column(String(64), nullable=False, index=True)
    payload = db.Column(Text, nullable=False)
    create_time = db.Column(Timestamp, nullable=False)
    sent_time = db.Column(Timestamp, comment="when the broker last accepted it")
    settled_time = db.Column(Timestamp, comment="when every step it triggers was seen done, skipped or dead")


class FulfilmentTrace(db.Model):
    """What each fulfilment step of an order did and when: done, skipped, failed or dead."""

    __tablename__ = "fulfilment_trace"

    id = db.Column(Id, primary_key=True, autoincrement=True)
    order_sn = db.Column(String(64), nullable=False, index=True)
    step = db.Column(String(32), nullable=False)
    outcome = db.Column(String(16), nullable=False)
    detail = db.Column(String(DETAIL_LENGTH), nullable=False, default="")
    at = db.Column(Timestamp, nullable=False)


class PaymentNotification(db.Model):
    """Every provider notification received (the notify log): raw body, verdict, outcome."""

    __tablename__ = "payment_notification"
    __table_args__ = (Index("ix_notification_notify_id", "provider", "notify_id"),)

    id = db.Column(Id, primary_key=True, autoincrement=True)
    provider = db.Column(String(32), nullable=False)
    notify_id = db.Column(String(128))
    out_trade_no = db.Column(String(64), index=True)
    received_at = db.Column(Timestamp, nullable=False)
    verified = db.Column(Boolean, nullable=False)
    accepted = db.Column(Boolean, nullable=False)
    outcome = db.Column(String(32), nullable=False)
    detail = db.Column(Text)
    replay_of = db.Column(Id)
    raw = db.Column(Text, nullable=False)
