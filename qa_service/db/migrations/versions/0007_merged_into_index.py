"""merged_into index: every change of a question reads the questions merged into it

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 22:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_question_merged_into",
        "question",
        ["merged_into_id"],
        sqlite_where=sa.text("merged_into_id IS NOT NULL"),
        postgresql_where=sa.text("merged_into_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_question_merged_into", table_name="question")
