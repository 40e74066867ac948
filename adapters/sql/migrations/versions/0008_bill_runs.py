"""The runs over the providers' daily bills (``payment_bill_run``), shown on the operator page.

A new table only: nothing for old code to know, nothing of the existing tables touched.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from gmall_payment.adapters.sql.models import Id, Timestamp

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: What this revision adds: a database made before it is the models less this table.
ADDED_TABLES = ("payment_bill_run",)


def upgrade():
    op.create_table(
        "payment_bill_run",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("bill_date", sa.Date(), nullable=False, comment="the provider's day the bill covers"),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("finished_at", Timestamp, nullable=False),
        sa.Column(
            "outcome", sa.String(16), nullable=False, comment="done, or failed (the bill could not be had)"
        ),
        sa.Column("trade_lines", sa.Integer(), nullable=False),
        sa.Column("refund_lines", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column(
            "repaired", sa.Integer(), nullable=False, comment="trades applied as paid, refunds completed"
        ),
        sa.Column("refunds_recorded", sa.Integer(), nullable=False, comment="refunds made outside the shop"),
        sa.Column("differences", sa.Text(), nullable=False, comment="JSON list of the differences, in words"),
        sa.Column("detail", sa.String(500), nullable=False, comment="why a failed run failed"),
    )
    op.create_index("ix_bill_run_day", "payment_bill_run", ["provider", "bill_date"])


def downgrade():
    op.drop_index("ix_bill_run_day", table_name="payment_bill_run")
    op.drop_table("payment_bill_run")
