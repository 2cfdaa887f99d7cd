"""What each audience sees of a record. Never hand a table row to a client."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..db.models import Event, ModerationAction, Question, Segment, Speaker, Studio, Translation
from ..domain.lifecycle import Status, viewer_reason, viewer_status
from ..domain.translation_problem import Problem
from . import programme, streams
from .merges import Kept, followed


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat() + "Z" if dt else None


def translations_of(db: Session, question_ids: list[int]) -> dict[int, list[Translation]]:
    out: dict[int, list[Translation]] = {qid: [] for qid in question_ids}
    if question_ids:
        for t in db.exec(select(Translation).where(col(Translation.question_id).in_(question_ids))):
            out[t.question_id].append(t)
    return out


def translation_view(t: Translation) -> dict[str, Any]:
    return {
        "language": t.language,
        "text": t.text,
        "engine": t.engine,
        "model_version": t.model_version,
        "edited_by": t.edited_by,
    }


def moderator_question(q: Question, translations: list[Translation], merged_ids: Sequence[int] = ()) -> dict[str, Any]:
    """``merged_ids``: the questions merged into this one, directly or not (merges.descendants)."""
    problem = Problem.parse(q.translation_error)
    return {
        "id": q.id,
        "speaker_id": q.speaker_id,
        "segment_id": q.segment_id,
        "studio_id": q.studio_id,
        "viewer": q.viewer_id[:8],
        "text": q.text,
        "language": q.language,
        "detected_language": q.detected_language,
        "display_name": q.display_name,
        "country": q.country,
        "status": q.status,
        "version": q.version,
        "queue_position": q.queue_position,
        "reject_reason": q.reject_reason,
        "merged_into": q.merged_into_id,
        "merged_count": len(merged_ids),
        "merged_ids": list(merged_ids),
        "starred": q.starred,
        "votes": q.votes,
        "feed_hidden": q.feed_hidden,
        "asker_fields": q.asker_fields or {},
        "wants_answer": q.contact_email is not None,
        "similar_to": list(q.similar_ids or []),
        "translation_state": q.translation_state,
        "translation_error": problem.sentence() if problem else None,
        "translation_problem": problem.view() if problem else None,
        "translations": {t.language: translation_view(t) for t in translations},
        "created_at": iso(q.created_at),
        "updated_at": iso(q.updated_at),
    }


def host_question(q: Question, translations: list[Translation], merged_count: int = 0) -> dict[str, Any]:
    return {
        "id": q.id,
        "speaker_id": q.speaker_id,
        "text": q.text,
        "language": q.language,
        "display_name": q.display_name,
        "country": q.country,
        "status": q.status,
        "version": q.version,
        "queue_position": q.queue_position,
        "merged_count": merged_count,
        "votes": q.votes,
        "asker_fields": q.asker_fields or {},
        "translations": {t.language: {"text": t.text, "engine": t.engine} for t in translations},
    }


def viewer_question(q: Question, kept: Kept | None = None) -> dict[str, Any]:
    """The asker's view of their question. A merged one shows the status of the
    question kept in its place (``kept``, from merges.followed; None: that chain is
    broken, and it reads as approved) and ``merged``: true; nothing else of the kept
    question. A hidden one (banned asker) reads as received, without a reason."""
    status, reason = Status(q.status), q.reject_reason
    merged = status is Status.merged
    if merged and kept is not None:
        status, reason = kept.status, kept.reject_reason
    return {
        "id": q.id,
        "client_id": q.client_id,
        "speaker_id": q.speaker_id,
        "text": q.text,
        "language": q.language,
        "display_name": q.display_name,
        "status": viewer_status(status, reason),
        "reason": viewer_reason(status, reason, presets_only=merged),
        "merged": merged,
        "version": q.version,
        "created_at": iso(q.created_at),
    }


def feed_item(q: Question) -> dict[str, Any]:
    """A question as the public feed shows it: its original text; its texts in other
    languages travel on their own channels (feed_text). Nothing of the asker but the
    name they typed (not the country: the browser states it, the viewer did not choose
    to show it to everyone)."""
    return {
        "id": q.id,
        "speaker_id": q.speaker_id,
        "segment_id": q.segment_id,
        "studio_id": q.studio_id,
        "text": q.text,
        "language": q.language,
        "display_name": q.display_name,
        "status": viewer_status(Status(q.status)),
        "votes": q.votes,
        "created_at": iso(q.created_at),
    }


def feed_text(question_id: int, t: Translation) -> dict[str, Any]:
    return {"id": question_id, "language": t.language, "text": t.text, "machine": t.engine != "human"}


def viewer_questions(db: Session, qs: Sequence[Question]) -> list[dict[str, Any]]:
    """Viewer views of several questions, merge chains read in one query per link."""
    kept = followed(db, qs)
    return [viewer_question(q, kept.get(q.id) if q.id is not None else None) for q in qs]


def segment_view(s: Segment) -> dict[str, Any]:
    return {
        "id": s.id,
        "studio_id": s.studio_id,
        "title": s.title,
        "starts_at": iso(s.starts_at),
        "ends_at": iso(s.ends_at),
        "status": s.status,
        "status_manual": s.status_manual,
        "version": s.version,
        "streams": streams.as_list(s.streams),  # empty: the studio's streams play
        "i18n": programme.public(s.i18n),
    }


def studio_view(s: Studio) -> dict[str, Any]:
    return {
        "id": s.id,
        "slug": s.slug,
        "name": s.name,
        "city": s.city,
        "country": s.country,
        "timezone": s.timezone,
        "host_languages": s.host_languages,
        "streams": streams.as_list(s.streams),
        "i18n": programme.public(s.i18n),
    }


def speaker_view(s: Speaker) -> dict[str, Any]:
    return {
        "id": s.id,
        "segment_id": s.segment_id,
        "name": s.name,
        "title": s.title,
        "organisation": s.organisation,
        "languages": s.languages,
        "i18n": programme.public(s.i18n),
    }


def programme_version(db: Session, event_id: int | None) -> int:
    """The programme's version: the id of its newest change in the audit log (every
    change of studios, segments or speakers is one, serialised by the event row's lock:
    services/event_admin.py). 0: never changed since it was loaded."""
    newest = db.exec(
        select(sa.func.max(ModerationAction.id)).where(
            ModerationAction.event_id == event_id, col(ModerationAction.action).startswith("event.")
        )
    ).one()
    return int(newest or 0)


def schedule_view(db: Session, event: Event) -> dict[str, Any]:
    """The public programme: event, studios, segments, speakers; each with its
    translations (``i18n``), studios and segments with their ``streams``. Its ``version``
    is read first: the records read after it are never older than it."""
    version = programme_version(db, event.id)
    studios = db.exec(select(Studio).where(Studio.event_id == event.id).order_by(Studio.id)).all()  # type: ignore[arg-type]
    segments = db.exec(select(Segment).where(Segment.event_id == event.id).order_by(Segment.starts_at)).all()  # type: ignore[arg-type]
    seg_ids = [s.id for s in segments]
    speakers = (
        db.exec(select(Speaker).where(col(Speaker.segment_id).in_(seg_ids)).order_by(col(Speaker.id))).all()
        if seg_ids
        else []
    )
    return {
        "event": {
            "id": event.id,
            "slug": event.slug,
            "name": event.name,
            "moderator_language": event.moderator_language,
            "viewer_languages": event.viewer_languages,
            # The asker fields the form offers and whether it offers an answer by e-mail.
            "options": event.options,
        },
        "version": version,
        "studios": [studio_view(s) for s in studios],
        "segments": [segment_view(s) for s in segments],
        "speakers": [speaker_view(s) for s in speakers],
    }
