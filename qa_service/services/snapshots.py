"""Snapshots: the full state an audience starts from (and resyncs to).

Queue versions are read before the questions: the questions a snapshot shows are
never older than its queue version, so a queue.order event that is not newer than
that version may safely be dropped by the client."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from ..db.models import Event, Question, Studio
from ..domain.errors import NotFound
from ..domain.lifecycle import HIDDEN, HOST_VISIBLE, Status
from ..settings import Settings
from .context import Context
from .feed import my_votes
from .merges import descendants
from .views import host_question, moderator_question, schedule_view, studio_view, translations_of, viewer_questions

MODERATOR_LIMIT = 5000
HOST_ANSWERED_TAIL = 5


def translation_status(ctx: Context) -> dict[str, Any] | None:
    """What the translation workers run with, as they last reported (None: no worker yet)."""
    import json

    raw = ctx.publisher.client.get(f"{ctx.settings.redis_prefix}:translation:status")
    return json.loads(raw) if raw else None


def _event(db: Any, event_id: int) -> Event:
    event = db.get(Event, event_id)
    if event is None:
        raise NotFound("event.unknown", "no such event")
    return event


def schedule(ctx: Context, event_id: int) -> dict[str, Any]:
    with ctx.read() as db:
        return schedule_view(db, _event(db, event_id))


def moderator(ctx: Context, event_id: int) -> dict[str, Any]:
    with ctx.read() as db:
        event = _event(db, event_id)
        queue_versions = {
            str(s.id): s.queue_version for s in db.exec(select(Studio).where(Studio.event_id == event_id))
        }
        qs = list(
            db.exec(
                select(Question)
                .where(
                    Question.event_id == event_id,
                    sa.or_(col(Question.reject_reason).is_(None), col(Question.reject_reason) != HIDDEN),
                )
                .order_by(Question.id.desc())  # type: ignore[union-attr]
                .limit(MODERATOR_LIMIT)
            )
        )
        ids = [q.id for q in qs if q.id]
        tr, merged = translations_of(db, ids), descendants(db, ids)
        return {
            "schedule": schedule_view(db, event),
            "questions": [moderator_question(q, tr[q.id], merged[q.id]) for q in reversed(qs) if q.id],
            "queue_versions": queue_versions,
            "translation": translation_status(ctx),
        }


def host(ctx: Context, event_id: int, studio_id: int) -> dict[str, Any]:
    with ctx.read() as db:
        event = _event(db, event_id)
        studio = db.get(Studio, studio_id)
        if studio is None or studio.event_id != event_id:
            raise NotFound("studio.unknown", "no such studio")
        visible = [s.value for s in HOST_VISIBLE if s is not Status.answered]
        live = list(
            db.exec(
                select(Question)
                .where(Question.studio_id == studio_id, Question.status.in_(visible))  # type: ignore[attr-defined]
                .order_by(Question.queue_position, Question.id)  # type: ignore[arg-type]
            )
        )
        answered = list(
            db.exec(
                select(Question)
                .where(Question.studio_id == studio_id, Question.status == Status.answered.value)
                .order_by(Question.updated_at.desc())  # type: ignore[attr-defined]
                .limit(HOST_ANSWERED_TAIL)
            )
        )
        qs = live + answered
        ids = [q.id for q in qs if q.id]
        tr, merged = translations_of(db, ids), descendants(db, ids)
        return {
            "studio": studio_view(studio),
            "queue_version": studio.queue_version,
            "schedule": schedule_view(db, event),
            "questions": [host_question(q, tr[q.id], len(merged[q.id])) for q in qs if q.id],
            "translation": translation_status(ctx),
        }


def viewer(ctx: Context, event_id: int, viewer_id: str) -> dict[str, Any]:
    return {"schedule": schedule(ctx, event_id)} | viewer_own(ctx, event_id, viewer_id)


def viewer_own(ctx: Context, event_id: int, viewer_id: str) -> dict[str, Any]:
    """A viewer's snapshot without the programme (the hub shares that between viewers)."""
    with ctx.read() as db:
        qs = db.exec(
            select(Question).where(Question.event_id == event_id, Question.viewer_id == viewer_id).order_by(Question.id)  # type: ignore[arg-type]
        ).all()
        own = {"questions": viewer_questions(db, qs), "my_votes": my_votes(db, event_id, viewer_id)}
        return viewer_own_empty(ctx.settings) | own


def viewer_own_empty(settings: Settings) -> dict[str, Any]:
    """The own part of a snapshot for a viewer who has asked nothing (and voted for nothing)."""
    limits = {"max_question_chars": settings.max_question_chars, "max_name_chars": settings.max_name_chars}
    return {"questions": [], "my_votes": [], "limits": limits}
