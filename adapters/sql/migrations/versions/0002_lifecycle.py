"""Fulfilment trace, reconciliation, refunds, expiry (expand): columns, tables, indexes.

What the README's former "Upgrading a database made before this" asked for by hand, and the index it
forgot (ix_outbox_unsettled).

New columns of existing tables are nullable or carry a server default, so rows already there
get a value and the code still running meanwhile can insert without knowing them; 0003 drops
those defaults once every host runs the code that writes them. On MariaDB each ADD COLUMN is
instant and each index is built without locking the table (``online_ddl``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

from gmall_payment.adapters.sql.models import Id, Money, Timestamp

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "outbox_event",
        sa.Column(
            "settled_time", Timestamp, comment="when every step it triggers was seen done, skipped or dead"
        ),
    )
    op.create_index("ix_outbox_unsettled", "outbox_event", ["settled_time", "sent_time"])
    op.create_table(
        "fulfilment_trace",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("order_sn", sa.String(64), nullable=False, index=True),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("at", Timestamp, nullable=False),
    )

    for name, comment in (
        ("refund_reserved", "refunds pending or done: at most total_amount"),
        ("refunded", "refunds the provider confirmed"),
    ):
        op.add_column(
            "payment_info", sa.Column(name, Money, nullable=False, server_default="0", comment=comment)
        )
    op.add_column(
        "payment_info",
        sa.Column("refund_reason", sa.String(32), comment="why the money goes back by itself, if it does"),
    )
    op.add_column("payment_info", sa.Column("flag", sa.String(500), comment="what an operator must look at"))
    op.add_column("payment_info", sa.Column("query_attempts", sa.Integer, nullable=False, server_default="0"))
    op.add_column(
        "payment_info",
        sa.Column(
            "next_query_time", Timestamp, comment="when reconciliation asks the provider next; NULL: no more"
        ),
    )
    op.create_index("ix_payment_query_due", "payment_info", ["payment_status", "next_query_time"])
    op.add_column(
        "payment_notification",
        sa.Column(
            "source", sa.String(16), nullable=False, server_default="notify", comment="notify, query or close"
        ),
    )
    op.create_index("ix_order_status_created", "oms_order", ["status", "create_time"])

    op.create_table(
        "payment_settlement",
        sa.Column("order_sn", sa.String(64), primary_key=True),
        sa.Column("payment_id", Id, nullable=False),
        sa.Column("create_time", Timestamp, nullable=False),
    )
    op.create_table(
        "payment_refund",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("payment_id", Id, nullable=False, index=True),
        sa.Column("order_sn", sa.String(64), nullable=False, index=True),
        sa.Column("out_request_no", sa.String(64), nullable=False),
        sa.Column("amount", Money, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False, comment="0 pending, 1 succeeded, 2 failed"),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("create_time", Timestamp, nullable=False),
        sa.Column("update_time", Timestamp, nullable=False),
        sa.UniqueConstraint("payment_id", "out_request_no", name="uq_refund_request"),
    )

    # Reconcile what is open: every unpaid payment is asked about at the next pass.
    payments = sa.table(
        "payment_info", sa.column("payment_status", sa.SmallInteger), sa.column("next_query_time", Timestamp)
    )
    op.execute(payments.update().where(payments.c.payment_status == 0).values(next_query_time=datetime.now()))


def downgrade():
    op.drop_table("payment_refund")
    op.drop_table("payment_settlement")
    op.drop_index("ix_order_status_created", "oms_order")
    op.drop_column("payment_notification", "source")
    op.drop_index("ix_payment_query_due", "payment_info")
    for name in ("next_query_time", "query_attempts", "flag", "refund_reason", "refunded", "refund_reserved"):
        op.drop_column("payment_info", name)
    op.drop_table("fulfilment_trace")
    op.drop_index("ix_outbox_unsettled", "outbox_event")
    op.drop_column("outbox_event", "settled_time")
