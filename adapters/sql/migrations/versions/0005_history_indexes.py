"""Indexes for the operator's filters and the flash-sale tick.

They read the rows they find, not the table (issue 14: at 100,000 closed flash-sale orders the
tick scanned them all):

- ``payment_info(flag)``, ``payment_info(refund_reason, payment_status)``: the operator page's
  "flagged", "owed" and "attention" filters read only the payments they show.
- ``sms_seckill_order(status, returned_time)``: the tick's "closed or abandoned, unit not given
  back yet" reads the few rows due instead of every closed one.
- ``sms_seckill_sale(end_time)``: the sales open or to come (the tick's preheat, the pages)
  are read without the sales that are over.

Indexes only: built with ``ALGORITHM=INPLACE LOCK=NONE`` on MariaDB (adapters/sql/online_ddl.py),
so reads and writes go on while they are made; nothing for old code to know.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: (name, table, columns) of each index this revision adds.
INDEXES = (
    ("ix_payment_flag", "payment_info", ["flag"]),
    ("ix_payment_owed", "payment_info", ["refund_reason", "payment_status"]),
    ("ix_seckill_order_unreturned", "sms_seckill_order", ["status", "returned_time"]),
    ("ix_seckill_sale_end", "sms_seckill_sale", ["end_time"]),
)
#: What this revision adds, by table: the shape of a database made before it is the models' less these.
ADDED_INDEXES = {table: tuple(name for name, of, _ in INDEXES if of == table) for _, table, _ in INDEXES}


def upgrade():
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade():
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
