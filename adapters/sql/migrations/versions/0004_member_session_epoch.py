"""Members' session generation: logging out and a new password end every session.

``ums_member.session_epoch INT NOT NULL DEFAULT 0``: added with its server default, so old code
still inserts members and the column is instant on MariaDB; existing members start at 0. Their
cookies made before it name no generation: they sign in once more.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: What this revision adds, by table: the shape of a database made before it is the models' less these.
ADDED_COLUMNS = {"ums_member": ("session_epoch",)}


def upgrade():
    with op.batch_alter_table("ums_member") as batch:
        batch.add_column(
            sa.Column(
                "session_epoch",
                sa.Integer(),
                server_default="0",
                nullable=False,
                comment="the session generation: sessions signed in under an older one are over",
            )
        )


def downgrade():
    with op.batch_alter_table("ums_member") as batch:
        batch.drop_column("session_epoch")
