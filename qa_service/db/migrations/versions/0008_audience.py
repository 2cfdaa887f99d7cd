"""the audience (issue 13): votes and the public feed, similar questions, asker
fields and contact consent, streams per language, the programme in other languages

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 00:50:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _json_map(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.JSON(), nullable=False, server_default="{}")


def upgrade() -> None:
    op.create_table(
        "vote",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("viewer_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["question_id"], ["question.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("question_id", "viewer_id", name="uq_vote_question_viewer"),
    )
    with op.batch_alter_table("vote", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vote_viewer_id"), ["viewer_id"], unique=False)
    with op.batch_alter_table("question", schema=None) as batch_op:
        batch_op.add_column(sa.Column("votes", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("feed_hidden", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("similar_ids", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("asker_fields", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("contact_email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True))
        batch_op.add_column(sa.Column("contact_consent_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.add_column(_json_map("options"))
    with op.batch_alter_table("studio", schema=None) as batch_op:
        batch_op.add_column(_json_map("streams"))
        batch_op.add_column(_json_map("i18n"))
    with op.batch_alter_table("segment", schema=None) as batch_op:
        batch_op.add_column(_json_map("streams"))
        batch_op.add_column(_json_map("i18n"))
    with op.batch_alter_table("speaker", schema=None) as batch_op:
        batch_op.add_column(_json_map("i18n"))


def downgrade() -> None:
    for table, columns in (
        ("speaker", ["i18n"]),
        ("segment", ["i18n", "streams"]),
        ("studio", ["i18n", "streams"]),
        ("event", ["options"]),
        ("question", ["contact_consent_at", "contact_email", "asker_fields", "similar_ids", "feed_hidden", "votes"]),
    ):
        for column in columns:  # SQLite drops a column in place (3.35+): no table copy under foreign keys
            op.drop_column(table, column)
    with op.batch_alter_table("vote", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vote_viewer_id"))
    op.drop_table("vote")
