"""host links one by one (issue 14, staff management): each link issued is a row
its token names, so one link can be revoked and the others keep working

Tokens signed before this revision name no row; they keep opening until their
studio's host_token_version is bumped (``host-links --revoke``) or they expire.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 10:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hostlink",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("studio_id", sa.Integer(), nullable=False),
        sa.Column("studio_version", sa.Integer(), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["studio_id"], ["studio.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("hostlink", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hostlink_studio_id"), ["studio_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hostlink", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hostlink_studio_id"))
    op.drop_table("hostlink")
