"""The signed headers of a notification, kept with its body, so that a replay verifies them again.

``payment_notification.headers TEXT NULL``: the request headers a provider signs its
notifications with (WeChat Pay's ``Wechatpay-Signature``, ``-Timestamp``, ``-Nonce``,
``-Serial``), as received, a JSON object. Nullable: instant on MariaDB, old code still inserts;
the notifications kept before it have none (a WeChat Pay one of them cannot be replayed: its
signature cannot be checked again).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: What this revision adds, by table: the shape of a database made before it is the models' less these.
ADDED_COLUMNS = {"payment_notification": ("headers",)}


def upgrade():
    with op.batch_alter_table("payment_notification") as batch:
        batch.add_column(
            sa.Column(
                "headers",
                sa.Text(),
                nullable=True,
                comment="the signed headers as received (JSON), for a replay; NULL: none signed",
            )
        )


def downgrade():
    with op.batch_alter_table("payment_notification") as batch:
        batch.drop_column("headers")
