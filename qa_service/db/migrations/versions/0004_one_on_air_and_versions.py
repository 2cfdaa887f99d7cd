"""one question on air per studio; queue and segment versions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 14:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ON_AIR = sa.text("status = 'on_air'")


def upgrade() -> None:
    # A studio that (through the old race) has several questions on air keeps the one
    # that went on air last; the others become answered, as the next on_air would have done.
    op.execute(
        """
        UPDATE question SET status = 'answered', version = version + 1
        WHERE status = 'on_air' AND EXISTS (
            SELECT 1 FROM question AS later
            WHERE later.studio_id = question.studio_id AND later.status = 'on_air'
              AND (later.updated_at > question.updated_at
                   OR (later.updated_at = question.updated_at AND later.id > question.id))
        )
        """
    )
    op.create_index(
        "uq_question_one_on_air_per_studio",
        "question",
        ["studio_id"],
        unique=True,
        sqlite_where=ON_AIR,
        postgresql_where=ON_AIR,
    )
    with op.batch_alter_table("studio", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue_version", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("segment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): batch mode would copy the tables, and with
    # foreign keys on SQLite refuses to drop a table others point at.
    op.drop_column("segment", "version")
    op.drop_column("studio", "queue_version")
    op.drop_index("uq_question_one_on_air_per_studio", table_name="question")
