"""SQLModel tables. The database is the truth; the bus only carries hints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import NaiveDatetime
from sqlmodel import JSON, Column, Field, SQLModel

ON_AIR_INDEX = "uq_question_one_on_air_per_studio"


def utcnow() -> datetime:
    """Naive UTC: stored the same way by SQLite and PostgreSQL."""
    return datetime.now(UTC).replace(tzinfo=None)


class Event(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(index=True, unique=True, max_length=64)
    name: str = Field(max_length=200)
    moderator_language: str = Field(max_length=8)
    viewer_languages: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # What the event asks of viewers besides the question (services/audience.py):
    # {"asker_fields": [...], "contact": {...}}; empty: nothing more.
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"))


class Studio(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True)
    slug: str = Field(max_length=64)
    name: str = Field(max_length=200)
    city: str = Field(max_length=100)
    country: str = Field(max_length=100)
    timezone: str = Field(max_length=64)
    host_languages: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    host_token_version: int = 1  # bump to revoke every host link of the studio
    # Bumped, under this row's lock, with every change of the studio's queue or on-air
    # question; queue.order events carry it so clients drop an older order.
    queue_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # {language: {"hls": url} | {"embed": url}}: the broadcast in each language.
    streams: dict[str, object] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
    # {field: {language: {"text": str, "machine": bool}}}: the programme in other languages.
    i18n: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"))

    __table_args__ = (sa.UniqueConstraint("event_id", "slug"),)


class Segment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True)
    studio_id: int = Field(foreign_key="studio.id", index=True)
    title: str = Field(max_length=200)
    starts_at: NaiveDatetime
    ends_at: NaiveDatetime
    status: str = Field(default="upcoming", max_length=16)  # upcoming | live | ended
    status_manual: bool = False  # a moderator set the status: the clock leaves it alone
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})  # bumped with every change
    streams: dict[str, object] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
    i18n: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"))


class Speaker(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    segment_id: int = Field(foreign_key="segment.id", index=True)
    name: str = Field(max_length=200)
    title: str = Field(default="", max_length=200)
    organisation: str = Field(default="", max_length=200)
    languages: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    i18n: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"))


class Question(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True)
    speaker_id: int = Field(foreign_key="speaker.id", index=True)
    segment_id: int = Field(foreign_key="segment.id", index=True)
    studio_id: int = Field(foreign_key="studio.id", index=True)
    viewer_id: str = Field(max_length=64, index=True)
    client_id: str = Field(max_length=64)
    text: str = Field(sa_column=Column(sa.Text, nullable=False))
    language: str = Field(max_length=8)
    detected_language: str | None = Field(default=None, max_length=8)
    display_name: str | None = Field(default=None, max_length=200)
    country: str | None = Field(default=None, max_length=2)  # ISO 3166 code the viewer's browser states
    # Keyed hash of the asker's address (never the address itself): lets a moderator
    # ban the address for a while; forgotten with the question.
    address_hash: str | None = Field(default=None, max_length=64, index=True)
    status: str = Field(default="pending", max_length=16, index=True)
    version: int = 1
    queue_position: float | None = None
    reject_reason: str | None = Field(default=None, max_length=200)
    merged_into_id: int | None = Field(default=None, foreign_key="question.id")
    translation_state: str = Field(default="pending", max_length=16)  # pending | done | untranslated
    translation_error: str | None = Field(default=None, max_length=300)
    starred: bool = False
    # Upvotes on the public feed: the number of Vote rows, kept by the same transaction
    # that adds or removes one (votes = votes ± 1, so concurrent voters never lose one).
    votes: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    feed_hidden: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    # Earlier open questions of the same studio that read alike (services/similar.py).
    similar_ids: list[int] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # The event's optional asker fields as the viewer filled them ({"company": "..."}).
    asker_fields: dict[str, str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # "Answer me after the event": kept only with explicit consent, purged with the event.
    contact_email: str | None = Field(default=None, max_length=254)
    contact_consent_at: NaiveDatetime | None = None
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    updated_at: NaiveDatetime = Field(default_factory=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("viewer_id", "client_id", name="uq_question_viewer_client"),
        # At most one question on air per studio, whatever the code above the database does.
        sa.Index(
            ON_AIR_INDEX,
            "studio_id",
            unique=True,
            sqlite_where=sa.text("status = 'on_air'"),
            postgresql_where=sa.text("status = 'on_air'"),
        ),
        # The questions merged into one (its merged count, the askers who follow it): read
        # on every change of a question, so an index, over the few merged rows only.
        sa.Index(
            "ix_question_merged_into",
            "merged_into_id",
            sqlite_where=sa.text("merged_into_id IS NOT NULL"),
            postgresql_where=sa.text("merged_into_id IS NOT NULL"),
        ),
    )


class Vote(SQLModel, table=True):
    """One viewer's upvote of one question: at most one, by the database."""

    id: int | None = Field(default=None, primary_key=True)
    question_id: int = Field(foreign_key="question.id")
    viewer_id: str = Field(max_length=64, index=True)
    created_at: NaiveDatetime = Field(default_factory=utcnow)

    __table_args__ = (sa.UniqueConstraint("question_id", "viewer_id", name="uq_vote_question_viewer"),)


class Translation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    question_id: int = Field(foreign_key="question.id", index=True)
    language: str = Field(max_length=8)
    text: str = Field(sa_column=Column(sa.Text, nullable=False))
    engine: str = Field(max_length=64)  # "argos" or "human"
    model_version: str = Field(default="", max_length=64)
    edited_by: str | None = Field(default=None, max_length=64)
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    updated_at: NaiveDatetime = Field(default_factory=utcnow)

    __table_args__ = (sa.UniqueConstraint("question_id", "language", name="uq_translation_question_language"),)


class ModerationAction(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True)
    question_id: int | None = Field(default=None, foreign_key="question.id", index=True)
    segment_id: int | None = Field(default=None, foreign_key="segment.id")
    actor: str = Field(max_length=64)
    action: str = Field(max_length=32)
    before: dict[str, object] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, object] | None = Field(default=None, sa_column=Column(JSON))
    created_at: NaiveDatetime = Field(default_factory=utcnow, index=True)


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=64)
    # NFKC + case-folded username (security.username_key): "Admin", "ADMIN" and "Ａｄｍｉｎ"
    # are one account, enforced by the database.
    username_key: str = Field(max_length=128)
    password_hash: str = Field(max_length=200)
    role: str = Field(max_length=16)  # moderator | host | admin
    disabled: bool = False
    created_at: NaiveDatetime = Field(default_factory=utcnow)

    __table_args__ = (sa.UniqueConstraint("username_key", name="uq_user_username_key"),)


class StaffSession(SQLModel, table=True):
    """A staff login. The signed cookie names it; logout (or disabling the user)
    ends it on the server, so a copied cookie and open sockets stop working."""

    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    revoked_at: NaiveDatetime | None = None


class HostLink(SQLModel, table=True):
    """One host display link, issued for a studio (the /staff page, ``host-links``).
    Its token names this row: revoking it (``revoked_at``) closes that link alone;
    bumping the studio's ``host_token_version`` still revokes all of the studio's."""

    id: int | None = Field(default=None, primary_key=True)
    studio_id: int = Field(foreign_key="studio.id", index=True)
    studio_version: int  # the studio's host_token_version it was issued under: a bump revokes it too
    label: str = Field(default="", max_length=100)
    created_by: str = Field(max_length=64)
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    expires_at: NaiveDatetime | None = None
    revoked_at: NaiveDatetime | None = None


class Ban(SQLModel, table=True):
    """A viewer whose future questions are hidden from moderators."""

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True)
    viewer_id: str = Field(max_length=64)
    actor: str = Field(max_length=64)
    created_at: NaiveDatetime = Field(default_factory=utcnow)

    __table_args__ = (sa.UniqueConstraint("event_id", "viewer_id", name="uq_ban_event_viewer"),)


class AddressBan(SQLModel, table=True):
    """An address (by keyed hash) whose questions are hidden until ``expires_at``:
    a banned viewer who drops its token is still caught for a while."""

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True)
    address_hash: str = Field(max_length=64)
    actor: str = Field(max_length=64)
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    expires_at: NaiveDatetime

    __table_args__ = (sa.UniqueConstraint("event_id", "address_hash", name="uq_addressban_event_address"),)
