"""Tables of the shop as this service sees them (names from the seed's schema).

``db`` builds no engine here: Flask-SQLAlchemy creates it when an app calls ``init_app``.
"""

from decimal import Decimal

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.mysql import DATETIME, TINYINT
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from ...ports.store import DETAIL_LENGTH, FLAG_LENGTH


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
# The seed's tinyint(4) (payment_type); SQLite has one INTEGER type.
Tinyint = SmallInteger().with_variant(TINYINT(), "mysql", "mariadb")
# MySQL's DATETIME drops fractions of a second unless asked to keep them.
Timestamp = DateTime().with_variant(DATETIME(fsp=6), "mysql", "mariadb")


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class PaymentInfo(db.Model):
    """The seed's payment_info, one row per order and provider, plus refunds and reconciliation."""

    __tablename__ = "payment_info"
    __table_args__ = (
        UniqueConstraint("order_sn", "payment_type", name="uq_payment_order_provider"),
        UniqueConstraint("payment_type", "out_trade_no", name="uq_payment_trade"),
        Index("ix_payment_query_due", "payment_status", "next_query_time"),
        Index("ix_payment_flag", "flag"),
        Index("ix_payment_owed", "refund_reason", "payment_status"),
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
    refund_reserved = db.Column(
        Money, nullable=False, default=Decimal("0"), comment="refunds pending or done: at most total_amount"
    )
    refunded = db.Column(
        Money, nullable=False, default=Decimal("0"), comment="refunds the provider confirmed"
    )
    refund_reason = db.Column(String(32), comment="why the money goes back by itself, if it does")
    flag = db.Column(String(FLAG_LENGTH), comment="what an operator must look at")
    query_attempts = db.Column(Integer, nullable=False, default=0)
    next_query_time = db.Column(
        Timestamp, comment="when reconciliation asks the provider next; NULL: no more"
    )
    payment_type_code = db.Column(
        Tinyint, comment="the seed's payment_type: 1 alipay, 2 wechatpay; NULL: none"
    )


class PaymentSettlement(db.Model):
    """Which payment paid each order: the first one to be paid claims the row; a later one
    paid for the same order finds it taken and is owed back."""

    __tablename__ = "payment_settlement"

    order_sn = db.Column(String(64), primary_key=True)
    payment_id = db.Column(Id, nullable=False)
    create_time = db.Column(Timestamp, nullable=False)


class PaymentRefund(db.Model):
    """Refunds, one row per payment and out_request_no (the idempotency key sent to the provider)."""

    __tablename__ = "payment_refund"
    __table_args__ = (UniqueConstraint("payment_id", "out_request_no", name="uq_refund_request"),)

    id = db.Column(Id, primary_key=True, autoincrement=True)
    payment_id = db.Column(Id, nullable=False, index=True)
    order_sn = db.Column(String(64), nullable=False, index=True)
    out_request_no = db.Column(String(64), nullable=False)
    amount = db.Column(Money, nullable=False)
    reason = db.Column(String(32), nullable=False)
    status = db.Column(SmallInteger, nullable=False, default=0, comment="0 pending, 1 succeeded, 2 failed")
    answer = db.Column(Text, nullable=False, default="")
    create_time = db.Column(Timestamp, nullable=False)
    update_time = db.Column(Timestamp, nullable=False)


class Order(db.Model):
    __tablename__ = "oms_order"
    __table_args__ = (Index("ix_order_status_created", "status", "create_time"),)

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
    __table_args__ = (Index("ix_member_sessions_ended", "session_ended_time", "session_epoch"),)

    id = db.Column(Id, primary_key=True, autoincrement=True)
    username = db.Column(String(64), nullable=False, unique=True)
    password_hash = db.Column(String(255), nullable=False)
    nickname = db.Column(String(64))
    integration = db.Column(Integer, nullable=False, default=0)
    growth = db.Column(Integer, nullable=False, default=0)
    session_epoch = db.Column(
        Integer,
        nullable=False,
        default=0,
        server_default="0",
        comment="the session generation: sessions signed in under an older one are over",
    )
    session_ended_time = db.Column(Timestamp, comment="when its sessions last ended (session_epoch moved on)")


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
    source = db.Column(String(16), nullable=False, default="notify", comment="notify, query or close")
    headers = db.Column(
        Text, comment="the signed headers as received (JSON), for a replay; NULL: none signed"
    )


class PaymentBillRun(db.Model):
    """Each run over a provider's daily bill: what it read, matched, repaired and found different."""

    __tablename__ = "payment_bill_run"
    __table_args__ = (Index("ix_bill_run_day", "provider", "bill_date"),)

    id = db.Column(Id, primary_key=True, autoincrement=True)
    provider = db.Column(String(32), nullable=False)
    bill_date = db.Column(Date, nullable=False, comment="the provider's day the bill covers")
    started_at = db.Column(Timestamp, nullable=False)
    finished_at = db.Column(Timestamp, nullable=False)
    outcome = db.Column(String(16), nullable=False, comment="done, or failed (the bill could not be had)")
    trade_lines = db.Column(Integer, nullable=False, default=0)
    refund_lines = db.Column(Integer, nullable=False, default=0)
    matched = db.Column(Integer, nullable=False, default=0)
    repaired = db.Column(
        Integer, nullable=False, default=0, comment="trades applied as paid, refunds completed"
    )
    refunds_recorded = db.Column(Integer, nullable=False, default=0, comment="refunds made outside the shop")
    differences = db.Column(Text, nullable=False, comment="JSON list of the differences, in words")
    detail = db.Column(String(DETAIL_LENGTH), nullable=False, default="", comment="why a failed run failed")
