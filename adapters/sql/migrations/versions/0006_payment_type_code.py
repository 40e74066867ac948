"""The seed's payment_type code beside the provider's name: 1 Alipay, 2 WeChat Pay.

``payment_info.payment_type_code TINYINT NULL``: the seed's ``payment_type tinyint(4)
COMMENT '支付类型(微信与支付宝)'``. ``payment_type`` keeps the provider's name (its unique keys
stay as they are); each provider declares its code (``Provider.payment_code``) and the shop
writes it on every new payment. Nullable, so the column is instant on MariaDB and old code still
inserts; existing rows are filled from the provider's name (mockpay, and any provider the seed
has no code for, stay NULL). Payments an old host starts between this revision and the deploy
of the code that writes the column stay NULL until the same UPDATE is run again (docs/providers.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from gmall_payment.adapters.sql.models import Tinyint

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: What this revision adds, by table: the shape of a database made before it is the models' less these.
ADDED_COLUMNS = {"payment_info": ("payment_type_code",)}
#: The codes as this revision knows them (a revision does not ask today's providers).
CODES = {"alipay": 1, "wechatpay": 2}


def upgrade():
    with op.batch_alter_table("payment_info") as batch:
        batch.add_column(
            sa.Column(
                "payment_type_code",
                Tinyint,
                nullable=True,
                comment="the seed's payment_type: 1 alipay, 2 wechatpay; NULL: none",
            )
        )
    payments = sa.table(
        "payment_info", sa.column("payment_type", sa.String(32)), sa.column("payment_type_code", Tinyint)
    )
    for name, code in CODES.items():
        op.execute(
            payments.update()
            .where(payments.c.payment_type == name, payments.c.payment_type_code.is_(None))
            .values(payment_type_code=code)
        )


def downgrade():
    with op.batch_alter_table("payment_info") as batch:
        batch.drop_column("payment_type_code")
