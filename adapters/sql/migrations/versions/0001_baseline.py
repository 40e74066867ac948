"""Baseline: the shop's tables before the fulfilment trace and the payment's life after checkout.

As ``create_all`` made them then (reconciliation, refunds and expiry came with 0002).

Its ``schema()`` is also how ``init-db`` recognises a database of that shape made before
revisions existed (no ``alembic_version``) and stamps it here.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from gmall_payment.adapters.sql.models import Id, Money, Timestamp

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def schema() -> sa.MetaData:
    """The baseline's tables."""
    metadata = sa.MetaData()
    sa.Table(
        "payment_info",
        metadata,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("out_trade_no", sa.String(64), nullable=False),
        sa.Column("order_sn", sa.String(64), nullable=False),
        sa.Column("payment_type", sa.String(32), nullable=False, comment="provider name, e.g. alipay"),
        sa.Column("trade_no", sa.String(64)),
        sa.Column("total_amount", Money, nullable=False),
        sa.Column("subject", sa.String(100)),
        sa.Column("payment_status", sa.SmallInteger, nullable=False),
        sa.Column("create_time", Timestamp, nullable=False),
        sa.Column("callback_time", Timestamp),
        sa.Column("callback_content", sa.Text),
        sa.UniqueConstraint("order_sn", "payment_type", name="uq_payment_order_provider"),
        sa.UniqueConstraint("payment_type", "out_trade_no", name="uq_payment_trade"),
    )
    sa.Table(
        "ums_member",
        metadata,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("nickname", sa.String(64)),
        sa.Column("integration", sa.Integer, nullable=False),
        sa.Column("growth", sa.Integer, nullable=False),
    )
    sa.Table(
        "oms_order",
        metadata,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("order_sn", sa.String(64), nullable=False, unique=True),
        sa.Column("member_id", Id, sa.ForeignKey("ums_member.id"), nullable=False, index=True),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("total_amount", Money, nullable=False),
        sa.Column("pay_amount", Money, nullable=False),
        sa.Column("integration", sa.Integer, nullable=False),
        sa.Column("growth", sa.Integer, nullable=False),
        sa.Column("create_time", Timestamp, nullable=False),
    )
    sa.Table(
        "oms_order_item",
        metadata,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("order_id", Id, sa.ForeignKey("oms_order.id"), nullable=False, index=True),
        sa.Column("order_sn", sa.String(64), nullable=False),
        sa.Column("sku_id", Id, nullable=False),
        sa.Column("sku_name", sa.String(200), nullable=False),
        sa.Column("sku_price", Money, nullable=False),
        sa.Column("sku_quantity", sa.Integer, nullable=False),
    )
    sa.Table(
        "wms_ware_sku",
        metadata,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("sku_id", Id, nullable=False, unique=True),
        sa.Column("sku_name", sa.String(200), nullable=False),
        sa.Column("price", Money, nullable=False),
        sa.Column("stock", sa.Integer, nullable=False),
        sa.Column("stock_locked", sa.Integer, nullable=False),
        sa.Column("sales", sa.Integer, nullable=False),
    )
    sa.Table(
        "wms_stock_lock",
        metadata,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("order_sn", sa.String(64), nullable=False, index=True),
        sa.Column("sku_id", Id, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("create_time", Timestamp, nullable=False),
    )
    sa.Table(
        "ums_points_ledger",
        metadata,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("order_sn", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("member_id", Id, nullable=False, index=True),
        sa.Column("integration", sa.Integer, nullable=False),
        sa.Column("growth", sa.Integer, nullable=False),
        sa.Column("create_time", Timestamp, nullable=False),
        sa.UniqueConstraint("order_sn", "kind", name="uq_points_order_kind"),
    )
    sa.Table(
        "outbox_event",
        metadata,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("order_sn", sa.String(64), nullable=False, index=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("create_time", Timestamp, nullable=False),
        sa.Column("sent_time", Timestamp, comment="when the broker last accepted it"),
        sa.Index("ix_outbox_unsent", "sent_time", "id"),
    )
    sa.Table(
        "payment_notification",
        metadata,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("notify_id", sa.String(128)),
        sa.Column("out_trade_no", sa.String(64), index=True),
        sa.Column("received_at", Timestamp, nullable=False),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("accepted", sa.Boolean, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("replay_of", Id),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Index("ix_notification_notify_id", "provider", "notify_id"),
    )
    sa.Table(
        "sms_seckill_sale",
        metadata,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("sku_id", Id, nullable=False, index=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("price", Money, nullable=False),
        sa.Column("units", sa.Integer, nullable=False),
        sa.Column("start_time", Timestamp, nullable=False),
        sa.Column("end_time", Timestamp, nullable=False),
    )
    sa.Table(
        "sms_seckill_order",
        metadata,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("order_sn", sa.String(64), nullable=False, unique=True),
        sa.Column("sale_id", Id, nullable=False),
        sa.Column("member_id", Id, nullable=False),
        sa.Column("sku_id", Id, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("holding", sa.SmallInteger),
        sa.Column("reserved_time", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp),
        sa.Column("returned_time", Timestamp),
        sa.UniqueConstraint("sale_id", "member_id", "holding", name="uq_seckill_sale_member_holding"),
        sa.Index("ix_seckill_order_status", "status", "expires_at"),
    )
    return metadata


def upgrade():
    schema().create_all(op.get_bind())


def downgrade():
    schema().drop_all(op.get_bind())
