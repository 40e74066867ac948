"""The database's own count of each flash sale's units sold, and the gate generation it loaded.

``sms_seckill_sale.sold INT NOT NULL DEFAULT 0``: units the sale's orders hold, taken in the
transaction that makes the orders by a conditional update that cannot pass ``units``, so the
database never sells more than the sale has, whatever Redis says. Filled here from the
reservations holding a unit (``sms_seckill_order.holding = 1``), as the code keeps it after.

``sms_seckill_sale.gate_generation INT NOT NULL DEFAULT 0``: counts the sale's loads into the
gate; an order of a reservation taken from another generation is refused, so a gate that lost
its data is loaded again exactly. Existing sales start at 0, as do the reservations of a gate
loaded before this revision: a sale on sale during the deploy keeps selling.

Both with server defaults: instant on MariaDB, and old code still inserts sales.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: What this revision adds, by table: the shape of a database made before it is the models' less these.
ADDED_COLUMNS = {"sms_seckill_sale": ("sold", "gate_generation")}


def upgrade():
    with op.batch_alter_table("sms_seckill_sale") as batch:
        batch.add_column(
            sa.Column(
                "sold",
                sa.Integer(),
                server_default="0",
                nullable=False,
                comment="units its orders hold: taken with the orders, never past units",
            )
        )
        batch.add_column(
            sa.Column(
                "gate_generation",
                sa.Integer(),
                server_default="0",
                nullable=False,
                comment="the gate load of the sale: orders of reservations of another are refused",
            )
        )
    sales = sa.table("sms_seckill_sale", sa.column("id", sa.BigInteger), sa.column("sold", sa.Integer))
    reservations = sa.table(
        "sms_seckill_order", sa.column("sale_id", sa.BigInteger), sa.column("holding", sa.SmallInteger)
    )
    holding = (
        sa.select(sa.func.count())
        .select_from(reservations)
        .where(reservations.c.sale_id == sales.c.id, reservations.c.holding == 1)
        .scalar_subquery()
    )
    op.execute(sales.update().values(sold=holding))


def downgrade():
    with op.batch_alter_table("sms_seckill_sale") as batch:
        batch.drop_column("gate_generation")
        batch.drop_column("sold")
