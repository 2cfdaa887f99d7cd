"""security: normalised usernames (unique), address bans, keyed address hash on questions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 16:20:00
"""

import unicodedata

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _key(username: str) -> str:
    # Same rule as qa_service.security.username_key (copied: a migration must not
    # change when the code does).
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


def upgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("username_key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))
    conn = op.get_bind()
    users = conn.execute(sa.text('SELECT id, username FROM "user"')).all()
    seen: dict[str, str] = {}
    for uid, name in users:
        key = _key(name)
        if key in seen:
            raise RuntimeError(
                f"usernames {seen[key]!r} and {name!r} are the same name after normalisation; "
                "rename or delete one, then upgrade again"
            )
        seen[key] = name
        conn.execute(sa.text('UPDATE "user" SET username_key = :k WHERE id = :i'), {"k": key, "i": uid})
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.alter_column("username_key", existing_type=sa.String(length=128), nullable=False)
        batch_op.create_unique_constraint("uq_user_username_key", ["username_key"])

    with op.batch_alter_table("question", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_question_address_hash"), ["address_hash"], unique=False)

    op.create_table(
        "addressban",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("address_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "address_hash", name="uq_addressban_event_address"),
    )
    with op.batch_alter_table("addressban", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_addressban_event_id"), ["event_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("addressban", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_addressban_event_id"))
    op.drop_table("addressban")
    with op.batch_alter_table("question", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_question_address_hash"))
        batch_op.drop_column("address_hash")
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_constraint("uq_user_username_key", type_="unique")
        batch_op.drop_column("username_key")
