"""When a member's sessions last ended, so that the click trusts the others' cookies unread.

``ums_member.session_ended_time DATETIME(6) NULL``, indexed with ``session_epoch``: set with
every move of ``session_epoch`` (a logout, a new password). Only a member whose sessions ended within a
cookie's lifetime can hold a cookie of an older generation, so each web process keeps just
those members (``adapters/session_cache.py``) and reads no generation for anyone else.

A member whose generation moved before this revision counts as ended at the upgrade: their
old cookies stay refused while they may still be valid. One whose generation an older process
moves during the deploy gets no time: it is found by its generation and no time (the index's
second column). Nullable and without a default: instant on MariaDB, and old code still inserts
members.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: What this revision adds, by table: the shape of a database made before it is the models' less these.
ADDED_COLUMNS = {"ums_member": ("session_ended_time",)}
ADDED_INDEXES = {"ums_member": ("ix_member_sessions_ended",)}


def upgrade():
    with op.batch_alter_table("ums_member") as batch:
        batch.add_column(
            sa.Column(
                "session_ended_time",
                sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
                nullable=True,
                comment="when its sessions last ended (session_epoch moved on)",
            )
        )
    op.create_index("ix_member_sessions_ended", "ums_member", ["session_ended_time", "session_epoch"])
    members = sa.table(
        "ums_member",
        sa.column("session_epoch", sa.Integer),
        sa.column("session_ended_time", sa.DateTime),
    )
    op.execute(members.update().where(members.c.session_epoch > 0).values(session_ended_time=datetime.now()))


def downgrade():
    op.drop_index("ix_member_sessions_ended", table_name="ums_member")
    with op.batch_alter_table("ums_member") as batch:
        batch.drop_column("session_ended_time")
