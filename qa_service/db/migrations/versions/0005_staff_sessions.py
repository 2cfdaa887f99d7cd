"""staff sessions on the server (logout ends them, sockets included)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 14:40:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staffsession",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("staffsession", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staffsession_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("staffsession", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staffsession_user_id"))
    op.drop_table("staffsession")
