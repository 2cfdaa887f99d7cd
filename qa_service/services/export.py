"""What the organiser takes away. Today: each speaker's unanswered questions, for the
speaker's team to answer after the event, with the contact of the askers who asked
for an answer (and consented to give their e-mail address).

Rows are plain dicts of text (one per question), so one function feeds CSV now and
other formats later.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from ..db.models import Question, Segment, Speaker, Studio
from ..domain.errors import NotFound
from ..domain.lifecycle import HIDDEN, Status
from .context import Context
from .merges import followed
from .questions import event_by_slug
from .views import iso, translations_of

# Answered, or on air now: the speaker has it. Every other question is still open for the team.
_DONE = {Status.answered.value, Status.on_air.value}
BASE_COLUMNS = [
    "question_id",
    "asked_at",
    "status",
    "merged_into",
    "votes",
    "language",
    "question",
    "speaker_language",
    "translation",
    "name",
    "country",
]
CONTACT_COLUMNS = ["wants_answer", "email", "consent_at"]


@dataclass(frozen=True)
class SpeakerFile:
    speaker_id: int
    speaker: str
    segment: str
    studio: str
    columns: list[str]
    rows: list[dict[str, str]]

    @property
    def name(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.speaker).strip("-").lower() or "speaker"
        return f"unanswered-{self.speaker_id}-{slug}.csv"

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_safe(row) for row in self.rows)
        return out.getvalue()


def _safe(row: dict[str, str]) -> dict[str, str]:
    """A spreadsheet runs a cell that starts with = + - @ as a formula: viewers' text is
    prefixed with an apostrophe so it opens as the text it is (CSV injection)."""
    return {k: ("'" + v if v[:1] in ("=", "+", "-", "@", "\t", "\r") else v) for k, v in row.items()}


def unanswered(ctx: Context, event_slug: str | None, speaker_id: int | None = None) -> list[SpeakerFile]:
    """One file per speaker (of ``speaker_id`` only, if given): the questions asked to
    them that were not answered on air, oldest first. A merged question counts as its
    kept question does; a hidden one (banned asker) is left out."""
    with ctx.read() as db:
        event = event_by_slug(db, event_slug)
        if event is None or event.id is None:
            raise NotFound("event.unknown", f"no event {event_slug or ''!r} is loaded")
        fields = [f["key"] for f in event.options.get("asker_fields", [])]
        contact = "contact" in event.options
        columns = BASE_COLUMNS + [f"field_{k}" for k in fields] + (CONTACT_COLUMNS if contact else [])
        stmt = (
            select(Speaker, Segment, Studio)
            .join(Segment, col(Segment.id) == col(Speaker.segment_id))
            .join(Studio, col(Studio.id) == col(Segment.studio_id))
            .where(Segment.event_id == event.id)
            .order_by(col(Segment.starts_at), col(Speaker.id))
        )
        if speaker_id is not None:
            stmt = stmt.where(Speaker.id == speaker_id)
        found = list(db.exec(stmt))
        if speaker_id is not None and not found:
            raise NotFound("speaker.unknown", f"no speaker {speaker_id} in {event.slug!r}")
        qs = list(
            db.exec(
                select(Question)
                .where(
                    Question.event_id == event.id,
                    col(Question.speaker_id).in_([sp.id for sp, _, _ in found]),
                    sa.or_(col(Question.reject_reason).is_(None), col(Question.reject_reason) != HIDDEN),
                )
                .order_by(col(Question.id))
            )
        )
        kept = followed(db, [q for q in qs if q.status == Status.merged.value])
        texts = translations_of(db, [q.id for q in qs if q.id is not None])
        files = []
        for sp, seg, studio in found:
            rows = []
            for q in qs:
                if q.speaker_id != sp.id or q.id is None:
                    continue
                follows = kept.get(q.id)
                status = follows.status.value if follows is not None else q.status
                if status in _DONE:
                    continue
                target = next((lang for lang in sp.languages if lang == q.language), None) or next(
                    (lang for lang in sp.languages if any(t.language == lang for t in texts[q.id])), ""
                )
                translation = next((t.text for t in texts[q.id] if t.language == target), "")
                row: dict[str, Any] = {
                    "question_id": str(q.id),
                    "asked_at": iso(q.created_at) or "",
                    "status": q.status,
                    "merged_into": str(q.merged_into_id or ""),
                    "votes": str(q.votes),
                    "language": q.language,
                    "question": q.text,
                    "speaker_language": target,
                    "translation": translation if target != q.language else q.text,
                    "name": q.display_name or "",
                    "country": q.country or "",
                }
                for k in fields:
                    row[f"field_{k}"] = (q.asker_fields or {}).get(k, "")
                if contact:
                    row["wants_answer"] = "yes" if q.contact_email else ""
                    row["email"] = q.contact_email or ""
                    row["consent_at"] = iso(q.contact_consent_at) or ""
                rows.append(row)
            assert sp.id is not None
            files.append(SpeakerFile(sp.id, sp.name, seg.title, studio.name, columns, rows))
        return files
