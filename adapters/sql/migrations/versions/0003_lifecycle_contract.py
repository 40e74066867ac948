"""Reconciliation, refunds (contract): the server defaults 0002 gave its new columns go.

As in the models, once every host runs the code that writes those columns itself.

With several web hosts: ``gmall-payment db upgrade 0002``, deploy the code everywhere, then
``gmall-payment db upgrade`` (docs/deployment.md, "Schema changes"). On MariaDB dropping a default is
instant; SQLite cannot alter a column, so its two tables are copied (batch mode).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: The columns 0002 added with a server default, by table.
DEFAULTED = {
    "payment_info": {"refund_reserved": "0", "refunded": "0", "query_attempts": "0"},
    "payment_notification": {"source": "notify"},
}


def upgrade():
    for table, columns in DEFAULTED.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, server_default=None)


def downgrade():
    for table, columns in DEFAULTED.items():
        with op.batch_alter_table(table) as batch:
            for column, default in columns.items():
                batch.alter_column(column, server_default=default)
