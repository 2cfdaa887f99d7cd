"""What the organiser takes away, during the event and after it: the questions, the
moderation log, and each speaker's unanswered questions for the speaker's team.

One place builds the rows (plain dicts of text, numbers and naive-UTC datetimes, one
per question or log entry) and one place writes them, the same columns in every format:

* CSV: one table, UTF-8; a text cell a spreadsheet would run as a formula (= + - @,
  tab, CR first) gets an apostrophe in front (CSV injection); times as ISO 8601 UTC.
* JSON: a document ``{what, event, filters, generated_at, columns, rows}``; values as
  they are, times as ISO 8601 UTC.
* XLSX (openpyxl): one sheet per table, a styled and frozen header, text cells typed
  as text (never a formula, whatever they start with), times as real datetimes (UTC).
  The questions' workbook also carries the "Moderation log" sheet of the same scope.

The times a question was approved, put on air and answered are not columns of the
question: they are read from the moderation log (the first ``approve``, the last
``on_air``, and the last ``answer`` if it is answered now); empty where that never
happened. Yes/no values are booleans in JSON, "yes"/"no" in CSV and XLSX.

E-mail addresses (given with the asker's consent) appear in one file only: the
unanswered questions for the speaker's team, and only when ``contacts`` is asked
for (the REST edge: admins; the command line: the organiser). Everywhere else the
export states only ``wants_answer`` yes or no. Hidden questions (a banned asker's)
are never exported: nobody saw them.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..db.models import Event, ModerationAction, Question, Segment, Speaker, Studio, Translation, utcnow
from ..domain.errors import DomainError, NotFound
from ..domain.lifecycle import HIDDEN, Status
from .context import Context
from .merges import followed
from .questions import event_by_slug
from .views import iso, translations_of

FORMATS = ("csv", "json", "xlsx")
WHAT = ("questions", "log", "unanswered")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
Value = str | int | bool | datetime | None

# What a speaker's team gets to answer after the event: what the moderators let through
# and the air did not reach (approved, queued; a merged one as the question kept in its
# place), and what was turned down only for lack of time. Never a question no moderator
# looked at (pending) nor one rejected for what it says.
_FOR_THE_TEAM = {Status.approved.value, Status.queued.value}
_NO_TIME = "no_time"


def _for_the_team(status: str, reject_reason: str | None) -> bool:
    return status in _FOR_THE_TEAM or (status == Status.rejected.value and reject_reason == _NO_TIME)


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
SPEAKER_COLUMNS = ["speaker_id", "speaker", "studio", "segment"]  # the unanswered file of several speakers
LOG_COLUMNS = [
    "id",
    "at",
    "actor",
    "action",
    "question_id",
    "studio_id",
    "segment_id",
    "from_status",
    "to_status",
    "reject_reason",
    "merged_into",
    "details",
]
# What the log's other columns already say, or nobody needs in a report.
_LOG_SHOWN = {"status", "version", "queue_position", "reject_reason", "merged_into", "batch", "starred", "studio_id"}
_TIMES = ("approve", "on_air", "answer")  # the log actions the questions' timestamps come from


# ── filters ────────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class Filters:
    """Which part of the event: each given filter narrows it (all of them: both).
    ``studio`` is an id, or a studio's slug (the command line)."""

    speaker_id: int | None = None
    studio: int | str | None = None
    segment_id: int | None = None


@dataclass(frozen=True)
class _Scope:
    """The event and the filters, checked against it (unknown ids are refused)."""

    event: Event
    speaker_id: int | None
    studio_id: int | None
    segment_id: int | None
    studios: dict[int, Studio]
    segments: dict[int, Segment]
    speakers: dict[int, Speaker]

    @property
    def event_id(self) -> int:
        assert self.event.id is not None
        return self.event.id

    def view(self) -> dict[str, int | str | None]:
        studio = self.studios.get(self.studio_id) if self.studio_id else None
        return {
            "speaker_id": self.speaker_id,
            "studio_id": self.studio_id,
            "studio": studio.slug if studio else None,
            "segment_id": self.segment_id,
        }

    def slug(self) -> str:
        """For file names: "-studio-moscow-speaker-4", or "" for the whole event."""
        parts = []
        if self.studio_id:
            parts.append(f"studio-{_slug(self.studios[self.studio_id].slug)}")
        if self.segment_id:
            parts.append(f"segment-{self.segment_id}")
        if self.speaker_id:
            parts.append(f"speaker-{self.speaker_id}")
        return "".join("-" + p for p in parts)

    def questions(self) -> list[sa.ColumnElement[bool]]:
        """The WHERE of the questions in scope (hidden ones never are)."""
        where = [
            col(Question.event_id) == self.event_id,
            sa.or_(col(Question.reject_reason).is_(None), col(Question.reject_reason) != HIDDEN),
        ]
        if self.speaker_id:
            where.append(col(Question.speaker_id) == self.speaker_id)
        if self.studio_id:
            where.append(col(Question.studio_id) == self.studio_id)
        if self.segment_id:
            where.append(col(Question.segment_id) == self.segment_id)
        return where

    def has_speaker(self, sp: Speaker) -> bool:
        seg = self.segments[sp.segment_id]
        return (
            (not self.speaker_id or sp.id == self.speaker_id)
            and (not self.segment_id or seg.id == self.segment_id)
            and (not self.studio_id or seg.studio_id == self.studio_id)
        )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def _scope(db: Session, event_slug: str | None, filters: Filters) -> _Scope:
    event = event_by_slug(db, event_slug)
    if event is None or event.id is None:
        raise NotFound("event.unknown", f"no event {event_slug or ''!r} is loaded")
    studios = {s.id: s for s in db.exec(select(Studio).where(Studio.event_id == event.id)) if s.id}
    segments = {s.id: s for s in db.exec(select(Segment).where(Segment.event_id == event.id)) if s.id}
    speakers = {
        s.id: s
        for s in db.exec(select(Speaker).where(col(Speaker.segment_id).in_(list(segments))).order_by(col(Speaker.id)))
        if s.id
    }
    studio_id: int | None = None
    if isinstance(filters.studio, str) and not (filters.studio.isascii() and filters.studio.isdigit()):
        studio_id = next((i for i, s in studios.items() if s.slug == filters.studio), None)
        if studio_id is None:
            raise NotFound("studio.unknown", f"no studio {filters.studio!r} in {event.slug!r}")
    elif filters.studio is not None:
        studio_id = int(filters.studio)
        if studio_id not in studios:
            raise NotFound("studio.unknown", f"no studio {studio_id} in {event.slug!r}")
    if filters.segment_id is not None and filters.segment_id not in segments:
        raise NotFound("segment.unknown", f"no segment {filters.segment_id} in {event.slug!r}")
    if filters.speaker_id is not None and filters.speaker_id not in speakers:
        raise NotFound("speaker.unknown", f"no speaker {filters.speaker_id} in {event.slug!r}")
    return _Scope(event, filters.speaker_id, studio_id, filters.segment_id, studios, segments, speakers)


# ── tables and the writers ─────────────────────────────────────────────────
@dataclass(frozen=True)
class Table:
    title: str  # the sheet's name (at most 31 characters)
    columns: list[str]
    rows: list[dict[str, Value]]


@dataclass(frozen=True)
class Export:
    """One export: CSV and JSON carry ``tables[0]``, XLSX every table (a sheet each)."""

    what: str
    event: dict[str, str]
    filters: dict[str, int | str | None]
    name: str  # the file name without its extension
    tables: list[Table]
    generated_at: datetime = field(default_factory=utcnow)

    def filename(self, fmt: str) -> str:
        return f"{self.name}.{fmt}"

    def render(self, fmt: str) -> bytes:
        if fmt == "csv":
            return to_csv(self.tables[0]).encode("utf-8")
        if fmt == "json":
            return to_json(self)
        if fmt == "xlsx":
            return to_xlsx(self.tables)
        raise DomainError("export.format_unknown", f"format must be one of {', '.join(FORMATS)}")


def _csv_cell(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return iso(value) or ""
    if isinstance(value, int):
        return str(value)
    # A spreadsheet runs a cell that starts with = + - @ as a formula: viewers' text is
    # prefixed with an apostrophe so it opens as the text it is (CSV injection).
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def to_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([_csv_cell(row.get(c)) for c in table.columns])
    return out.getvalue()


def _json_value(value: Value) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def to_json(export: Export) -> bytes:
    table = export.tables[0]
    doc = {
        "what": export.what,
        "event": export.event,
        "filters": export.filters,
        "generated_at": iso(export.generated_at),
        "columns": table.columns,
        "rows": [{c: _json_value(row.get(c)) for c in table.columns} for row in table.rows],
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_WIDTH_SAMPLE = 200  # rows read to size a column
_MAX_WIDTH = 60
_XLSX_CELL_MAX = 32_767  # characters Excel keeps in a cell


def to_xlsx(tables: Sequence[Table]) -> bytes:
    """A workbook, written row by row (openpyxl's write-only mode: a large event
    stays cheap), a sheet per table."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    for table in tables:
        _sheet(wb, table)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _sheet(wb: Any, table: Table) -> None:
    """A bold, filled, frozen header with a filter; column widths from the header and
    the first rows; text typed as text, so a question that starts with "=" stays a
    question (openpyxl would write it as a formula); times as datetimes in UTC."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(table.title[:31])
    ws.freeze_panes = "A2"
    if table.columns:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(table.columns))}{len(table.rows) + 1}"
    for i, c in enumerate(table.columns, start=1):
        longest = max([len(c), *(_width(r.get(c)) for r in table.rows[:_WIDTH_SAMPLE])])
        ws.column_dimensions[get_column_letter(i)].width = min(_MAX_WIDTH, longest + 2)
    bold, fill = Font(bold=True, color="FFFFFF"), PatternFill("solid", fgColor="305496")

    def header(text: str) -> Any:
        cell = WriteOnlyCell(ws, value=text)
        cell.font, cell.fill = bold, fill
        return cell

    def cell(value: Value) -> Any:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, datetime):
            c = WriteOnlyCell(ws, value=value)
            c.number_format = "yyyy-mm-dd hh:mm:ss"
            return c
        if not isinstance(value, str):
            return value
        c = WriteOnlyCell(ws, value=ILLEGAL_CHARACTERS_RE.sub("", value)[:_XLSX_CELL_MAX])
        c.data_type = "s"  # text, always: never a formula
        return c

    ws.append([header(c) for c in table.columns])
    for row in table.rows:
        ws.append([cell(row.get(c)) for c in table.columns])


def _width(value: Value) -> int:
    """About how many characters wide a cell shows ``value``."""
    if isinstance(value, datetime):
        return 19  # yyyy-mm-dd hh:mm:ss
    if isinstance(value, str):
        return max(map(len, value.splitlines() or [""]))
    return 3 if value is None or isinstance(value, bool) else len(str(value))


def _event_view(event: Event) -> dict[str, str]:
    return {"slug": event.slug, "name": event.name}


def _stamp(at: datetime) -> str:
    return at.strftime("%Y%m%d-%H%M")


# ── the questions ──────────────────────────────────────────────────────────
def _times(db: Session, event_id: int) -> dict[int, dict[str, datetime]]:
    """Per question: when it was first approved, last put on air, last answered
    (from the moderation log, oldest entry first)."""
    out: dict[int, dict[str, datetime]] = {}
    rows = db.exec(
        sa.select(  # type: ignore[call-overload]
            col(ModerationAction.question_id), col(ModerationAction.action), col(ModerationAction.created_at)
        )
        .where(
            col(ModerationAction.event_id) == event_id,
            col(ModerationAction.question_id).is_not(None),
            col(ModerationAction.action).in_(_TIMES),
        )
        .order_by(col(ModerationAction.id))
    )
    for qid, action, at in rows:
        times = out.setdefault(qid, {})
        if action == "approve":
            times.setdefault("approved_at", at)
        elif action == "on_air":
            times["on_air_at"] = at
        else:
            times["answered_at"] = at
    return out


def _languages(event: Event, present: Iterable[str]) -> list[str]:
    """The languages of the translation columns: the event's order, then any other."""
    seen = set(present)
    ordered = [lang for lang in [event.moderator_language, *event.viewer_languages] if lang in seen]
    ordered = list(dict.fromkeys(ordered))
    return ordered + sorted(seen - set(ordered))


def _field_keys(event: Event, qs: Iterable[Question]) -> list[str]:
    """The event's asker fields in its order, then keys questions kept from an earlier version of it."""
    keys = [f["key"] for f in event.options.get("asker_fields", [])]
    extra = {k for q in qs for k in (q.asker_fields or {})} - set(keys)
    return keys + sorted(extra)


def questions_table(db: Session, scope: _Scope) -> Table:
    qs = list(db.exec(select(Question).where(*scope.questions()).order_by(col(Question.id))))
    texts: dict[int, dict[str, str]] = {q.id: {} for q in qs if q.id is not None}
    if qs:
        for t in db.exec(
            select(Translation)
            .join(Question, col(Question.id) == col(Translation.question_id))
            .where(*scope.questions())
        ):
            texts[t.question_id][t.language] = t.text
    times = _times(db, scope.event_id)
    merged_from: dict[int, list[int]] = {}
    for q in qs:
        if q.merged_into_id is not None and q.id is not None:
            merged_from.setdefault(q.merged_into_id, []).append(q.id)
    languages = _languages(scope.event, {lang for by in texts.values() for lang in by})
    fields = _field_keys(scope.event, qs)
    columns = [
        "question_id",
        "asked_at",
        "approved_at",
        "on_air_at",
        "answered_at",
        "status",
        "reject_reason",
        "merged_into",
        "merged_from",
        "votes",
        "starred",
        "feed_hidden",
        "studio_id",
        "studio",
        "segment_id",
        "segment",
        "speaker_id",
        "speaker",
        "language",
        "detected_language",
        "question",
        *(f"translation_{lang}" for lang in languages),
        "translation_state",
        "name",
        "country",
        *(f"field_{k}" for k in fields),
        "wants_answer",
    ]
    rows: list[dict[str, Value]] = []
    for q in qs:
        assert q.id is not None
        when = times.get(q.id, {})
        studio, seg, sp = (
            scope.studios.get(q.studio_id),
            scope.segments.get(q.segment_id),
            scope.speakers.get(q.speaker_id),
        )
        row: dict[str, Value] = {
            "question_id": q.id,
            "asked_at": q.created_at,
            "approved_at": when.get("approved_at"),
            "on_air_at": when.get("on_air_at"),
            "answered_at": when.get("answered_at") if q.status == Status.answered.value else None,
            "status": q.status,
            "reject_reason": q.reject_reason,
            "merged_into": q.merged_into_id,
            "merged_from": " ".join(map(str, merged_from.get(q.id, []))) or None,
            "votes": q.votes,
            "starred": q.starred,
            "feed_hidden": q.feed_hidden,
            "studio_id": q.studio_id,
            "studio": studio.name if studio else None,
            "segment_id": q.segment_id,
            "segment": seg.title if seg else None,
            "speaker_id": q.speaker_id,
            "speaker": sp.name if sp else None,
            "language": q.language,
            "detected_language": q.detected_language,
            "question": q.text,
            "translation_state": q.translation_state,
            "name": q.display_name,
            "country": q.country,
            "wants_answer": q.contact_email is not None,  # whether, never the address
        }
        for lang in languages:
            row[f"translation_{lang}"] = texts[q.id].get(lang) if lang != q.language else None
        for k in fields:
            row[f"field_{k}"] = (q.asker_fields or {}).get(k)
        rows.append(row)
    return Table("Questions", columns, rows)


# ── the moderation log ─────────────────────────────────────────────────────
def log_table(db: Session, scope: _Scope) -> Table:
    """The moderation log of the scope, oldest first: the questions' entries (of the
    questions in scope), the segments' (in scope) and the studios' queue orders (in
    scope; not when a speaker or a segment is asked for)."""
    where_q = scope.questions()
    in_scope = {
        qid: (studio_id, segment_id)
        for qid, studio_id, segment_id in db.exec(
            sa.select(col(Question.id), col(Question.studio_id), col(Question.segment_id)).where(*where_q)  # type: ignore[call-overload]
        )
    }
    entries = db.exec(
        select(ModerationAction).where(ModerationAction.event_id == scope.event_id).order_by(col(ModerationAction.id))
    )
    rows: list[dict[str, Value]] = []
    for a in entries:
        before, after = a.before or {}, a.after or {}
        studio_id: int | None
        if a.question_id is not None:
            if a.question_id not in in_scope:
                continue
            studio_id, segment_id = in_scope[a.question_id]
        elif a.segment_id is not None:
            seg = scope.segments.get(a.segment_id)
            if scope.speaker_id or seg is None or (scope.segment_id and seg.id != scope.segment_id):
                continue
            if scope.studio_id and seg.studio_id != scope.studio_id:
                continue
            studio_id, segment_id = seg.studio_id, seg.id
        else:  # a studio's queue order
            raw = after.get("studio_id")
            studio_id = raw if isinstance(raw, int) else None
            if scope.speaker_id or scope.segment_id or (scope.studio_id and studio_id != scope.studio_id):
                continue
            segment_id = None
        details = {} if a.segment_id is not None else {k: v for k, v in after.items() if k not in _LOG_SHOWN}
        question_entry = a.question_id is not None and "status" in after
        rows.append(
            {
                "id": a.id,
                "at": a.created_at,
                "actor": a.actor,
                "action": a.action,
                "question_id": a.question_id,
                "studio_id": studio_id,
                "segment_id": segment_id,
                "from_status": _text(before.get("status")) if question_entry else None,
                "to_status": _text(after.get("status")) if question_entry else None,
                "reject_reason": _text(after.get("reject_reason")) if question_entry else None,
                "merged_into": _int(after.get("merged_into")) if question_entry else None,
                "details": json.dumps(details, ensure_ascii=False, sort_keys=True) if details else None,
            }
        )
    return Table("Moderation log", list(LOG_COLUMNS), rows)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# ── the exports ────────────────────────────────────────────────────────────
def questions_export(ctx: Context, event_slug: str | None, filters: Filters = Filters()) -> Export:
    """Every question of the scope (one row each), and the log of the same scope
    (the workbook's second sheet)."""
    with ctx.read() as db:
        scope = _scope(db, event_slug, filters)
        tables = [questions_table(db, scope), log_table(db, scope)]
        now = utcnow()
        return Export(
            "questions",
            _event_view(scope.event),
            scope.view(),
            f"{_slug(scope.event.slug)}-questions{scope.slug()}-{_stamp(now)}",
            tables,
            now,
        )


def log_export(ctx: Context, event_slug: str | None, filters: Filters = Filters()) -> Export:
    with ctx.read() as db:
        scope = _scope(db, event_slug, filters)
        now = utcnow()
        return Export(
            "log",
            _event_view(scope.event),
            scope.view(),
            f"{_slug(scope.event.slug)}-log{scope.slug()}-{_stamp(now)}",
            [log_table(db, scope)],
            now,
        )


# ── each speaker's unanswered questions ────────────────────────────────────
@dataclass(frozen=True)
class SpeakerFile:
    speaker_id: int
    speaker: str
    segment: str
    studio: str
    columns: list[str]
    rows: list[dict[str, Value]]
    event: dict[str, str] = field(default_factory=dict)
    filters: dict[str, int | str | None] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        return f"unanswered-{self.speaker_id}-{_slug(self.speaker) or 'speaker'}"

    @property
    def name(self) -> str:
        return self.filename("csv")

    def filename(self, fmt: str) -> str:
        return f"{self.stem}.{fmt}"

    def table(self) -> Table:
        return Table("Unanswered", self.columns, self.rows)

    def csv(self) -> str:
        return to_csv(self.table())

    def export(self) -> Export:
        return Export("unanswered", self.event, self.filters, self.stem, [self.table()])

    def render(self, fmt: str) -> bytes:
        return self.export().render(fmt)


def unanswered(
    ctx: Context,
    event_slug: str | None,
    speaker_id: int | None = None,
    *,
    filters: Filters | None = None,
    contacts: bool = True,
) -> list[SpeakerFile]:
    """One file per speaker (of ``speaker_id``, or of the ``filters``' scope): the
    questions asked to them that were not answered on air, oldest first. A merged
    question counts as its kept question does; a hidden one (banned asker) is left
    out. ``contacts``: with the consented e-mail addresses (else whether only)."""
    filters = filters or Filters(speaker_id=speaker_id)
    if speaker_id is not None:
        filters = Filters(speaker_id, filters.studio, filters.segment_id)
    with ctx.read() as db:
        scope = _scope(db, event_slug, filters)
        event = scope.event
        fields = [f["key"] for f in event.options.get("asker_fields", [])]
        contact = "contact" in event.options
        contact_columns = CONTACT_COLUMNS if contacts else CONTACT_COLUMNS[:1]
        columns = BASE_COLUMNS + [f"field_{k}" for k in fields] + (contact_columns if contact else [])
        found = sorted(
            (sp for sp in scope.speakers.values() if scope.has_speaker(sp)),
            key=lambda sp: (scope.segments[sp.segment_id].starts_at, sp.id or 0),
        )
        qs = list(
            db.exec(
                select(Question)
                .where(*scope.questions(), col(Question.speaker_id).in_([sp.id for sp in found]))
                .order_by(col(Question.id))
            )
        )
        kept = followed(db, [q for q in qs if q.status == Status.merged.value])
        texts = translations_of(db, [q.id for q in qs if q.id is not None])
        files = []
        for sp in found:
            seg = scope.segments[sp.segment_id]
            studio = scope.studios[seg.studio_id]
            rows = []
            for q in qs:
                if q.speaker_id != sp.id or q.id is None:
                    continue
                follows = kept.get(q.id)
                status, reason = (
                    (follows.status.value, follows.reject_reason) if follows else (q.status, q.reject_reason)
                )
                if not _for_the_team(status, reason):
                    continue
                target = next((lang for lang in sp.languages if lang == q.language), None) or next(
                    (lang for lang in sp.languages if any(t.language == lang for t in texts[q.id])), ""
                )
                translation = next((t.text for t in texts[q.id] if t.language == target), "")
                row: dict[str, Value] = {
                    "question_id": q.id,
                    "asked_at": q.created_at,
                    "status": q.status,
                    "merged_into": q.merged_into_id,
                    "votes": q.votes,
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
                    if contacts:
                        row["email"] = q.contact_email or ""
                        row["consent_at"] = q.contact_consent_at
                rows.append(row)
            assert sp.id is not None
            view = scope.view() | {"speaker_id": sp.id}
            files.append(SpeakerFile(sp.id, sp.name, seg.title, studio.name, columns, rows, _event_view(event), view))
        return files


def unanswered_export(
    ctx: Context, event_slug: str | None, filters: Filters = Filters(), *, contacts: bool = True
) -> Export:
    """The unanswered questions of the scope as one export: one speaker's file if
    a speaker is asked for, else every speaker's rows in one table, each row
    naming its speaker, studio and segment."""
    files = unanswered(ctx, event_slug, filters=filters, contacts=contacts)
    if filters.speaker_id is not None and len(files) == 1:
        return files[0].export()
    with ctx.read() as db:
        scope = _scope(db, event_slug, filters)
    event, view = _event_view(scope.event), scope.view()
    columns = SPEAKER_COLUMNS + (files[0].columns if files else BASE_COLUMNS)
    rows: list[dict[str, Value]] = []
    for f in files:
        head: dict[str, Value] = {
            "speaker_id": f.speaker_id,
            "speaker": f.speaker,
            "studio": f.studio,
            "segment": f.segment,
        }
        rows += [head | row for row in f.rows]
    now = utcnow()
    name = f"{_slug(scope.event.slug)}-unanswered{scope.slug()}-{_stamp(now)}"
    return Export("unanswered", event, view, name, [Table("Unanswered", columns, rows)], now)


def build(
    ctx: Context, event_slug: str | None, what: str, filters: Filters = Filters(), *, contacts: bool = False
) -> Export:
    """The export ``what`` (questions, log, unanswered) of the ``filters``' scope."""
    if what == "questions":
        return questions_export(ctx, event_slug, filters)
    if what == "log":
        return log_export(ctx, event_slug, filters)
    if what == "unanswered":
        return unanswered_export(ctx, event_slug, filters, contacts=contacts)
    raise DomainError("export.what_unknown", f"what must be one of {', '.join(WHAT)}")
