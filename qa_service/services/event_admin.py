"""Live editing of the programme by admins: studios, segments, speakers.

Each change is one transaction under the event row's lock: the values are validated
with the event file's own rules (services/event_loader.py), the change is audited
(``ModerationAction``: actor, ``event.<kind>_<add|update|delete>``, before, after), and
after the commit ONE ``schedule.updated`` goes out on the ``schedule`` channel carrying
the whole public programme (views.schedule_view) with its ``version``: the id of the
newest ``event.*`` audit row. Changes are serialised by the event row lock, so that
id grows with every change, and a client drops a programme older than the one it
holds (docs/protocol.md). ``qa-service event load`` announces its changes the same way
(:class:`Editing`, used by event_loader.load_event).

A studio, segment or speaker that questions were asked to is never deleted (409
``<kind>.has_questions``): the questions, their queue and their audit trail keep
pointing at it. A segment's live / ended status stays the schedule service's
(``POST /api/segments/{id}/status``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..bus import channels
from ..db.models import Event, HostLink, ModerationAction, Question, Segment, Speaker, Studio
from ..domain.errors import Conflict, DomainError, NotFound
from ..domain.validation import MAX_ID, check_int, clean_text
from . import event_loader
from .context import Context, Outbox
from .schedule import clock_status
from .views import schedule_view, segment_view, speaker_view, studio_view

AUDIT_PREFIX = "event."  # every programme change's audit action starts so (views.programme_version)
EVENT_TYPE = "schedule.updated"
SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
YEARS = (2000, 2100)  # segment times outside these are a typo


# ── the transaction every change runs in ─────────────────────────────────────
class Editing:
    """One programme change under way: the locked event, the actor, the audit rows."""

    def __init__(self, db: Session, event: Event, actor: str) -> None:
        self.db, self.event, self.actor = db, event, actor
        self.changes = 0

    @property
    def event_id(self) -> int:
        assert self.event.id is not None
        return self.event.id

    def audit(
        self, action: str, before: dict[str, Any] | None, after: dict[str, Any] | None, *, segment_id: int | None = None
    ) -> None:
        self.db.add(
            ModerationAction(
                event_id=self.event_id,
                segment_id=segment_id,
                actor=self.actor,
                action=AUDIT_PREFIX + action,
                before=before,
                after=after,
            )
        )
        self.changes += 1

    def announce(self, outbox: Outbox) -> None:
        """After the last change, before the commit: the whole programme, published once committed."""
        if self.changes:
            self.db.flush()
            outbox.add(self.event_id, channels.SCHEDULE, EVENT_TYPE, schedule_view(self.db, self.event))


def lock_event(db: Session, event_id: int) -> Event:
    """The event row, locked until commit (PostgreSQL: FOR NO KEY UPDATE, which questions
    being asked do not wait for): programme changes run one at a time."""
    event = db.exec(select(Event).where(col(Event.id) == event_id).with_for_update(key_share=True)).first()
    if event is None:
        raise NotFound("event.unknown", "no such event")
    return event


@contextmanager
def editing(ctx: Context, event_id: int, actor: str) -> Iterator[Editing]:
    with ctx.transaction() as (db, outbox):
        ed = Editing(db, lock_event(db, event_id), actor)
        yield ed
        ed.announce(outbox)


# ── reading ──────────────────────────────────────────────────────────────────
def question_counts(db: Session, event_id: int) -> dict[str, dict[str, int]]:
    """How many questions each studio, segment and speaker has (what may not be deleted)."""
    out: dict[str, dict[str, int]] = {"studios": {}, "segments": {}, "speakers": {}}
    for kind, column in (
        ("studios", Question.studio_id),
        ("segments", Question.segment_id),
        ("speakers", Question.speaker_id),
    ):
        rows = db.exec(
            sa.select(column, sa.func.count()).where(Question.event_id == event_id).group_by(column)  # type: ignore[call-overload]
        ).all()
        out[kind] = {str(k): int(n) for k, n in rows}
    return out


def admin_view(ctx: Context, event_id: int) -> dict[str, Any]:
    """What the admin page starts from: the public programme, the event's time zone,
    and the questions each record has."""
    with ctx.read() as db:
        event = db.get(Event, event_id)
        if event is None:
            raise NotFound("event.unknown", "no such event")
        view = schedule_view(db, event)
        view["timezone"] = event_loader.event_zone(db, event)
        view["questions"] = question_counts(db, event_id)
        return view


# ── validation: the event file's rules, as request errors ────────────────────
def _invalid(kind: str, field: str, message: str) -> DomainError:
    text = message if message.startswith(field) else f"{field}: {message}"
    return DomainError(f"{kind}.invalid", text, field=field)


def _file_rule(kind: str, field: str, check: Callable[[], Any]) -> Any:
    try:
        return check()
    except event_loader.ScheduleError as exc:
        raise _invalid(kind, field, str(exc).split(": ", 1)[-1]) from None


def _text(kind: str, data: Mapping[str, Any], field: str, max_chars: int, *, required: bool = True) -> str:
    try:
        text = clean_text(data.get(field), field=field, max_chars=max_chars, required=required, single_line=True)
    except DomainError as exc:
        raise _invalid(kind, field, exc.message) from None
    return text or ""


def _languages(kind: str, data: Mapping[str, Any], field: str) -> list[str]:
    return list(_file_rule(kind, field, lambda: event_loader.langs(data.get(field), field)))


def _streams(kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    value = data.get("streams")
    if value in (None, {}, []):
        return {}
    if isinstance(value, list):  # the public form: [{"language": "ru", "hls": url}, …], the original first
        try:
            value = {item["language"]: {k: v for k, v in item.items() if k != "language"} for item in value}
        except (TypeError, KeyError, AttributeError):
            raise _invalid(kind, "streams", "a list of {language, hls | embed}") from None
    return dict(_file_rule(kind, "streams", lambda: event_loader.stream_specs(value, kind)))


def _id(kind: str, data: Mapping[str, Any], field: str) -> int:
    try:
        return check_int(data.get(field), field=field, low=1, high=MAX_ID)
    except DomainError as exc:
        raise _invalid(kind, field, exc.message) from None


def _when(data: Mapping[str, Any], field: str, zone: str) -> datetime:
    """A segment time: a local time of ``zone`` (2030-01-07T09:30), or one with an offset."""
    raw = data.get(field)
    try:
        if not isinstance(raw, str) or len(raw) > 40:
            raise ValueError
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise _invalid("segment", field, "a date and time such as 2030-01-07T09:30") from None
    if not YEARS[0] <= when.year < YEARS[1]:
        raise _invalid("segment", field, f"the year must be {YEARS[0]} to {YEARS[1] - 1}")
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(zone))
    return when.astimezone(UTC).replace(tzinfo=None)


def _known(kind: str, data: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """Name what may change: a field that is not one is refused, not ignored; one sent
    as null counts as not sent."""
    unknown = sorted(set(data) - set(fields) - {"version"})
    if unknown:
        raise _invalid(kind, unknown[0], f"not a field of a {kind} (one of {', '.join(fields)})")
    return {k: v for k, v in data.items() if v is not None}


STUDIO_FIELDS = ("slug", "name", "city", "country", "timezone", "host_languages", "streams")
SEGMENT_FIELDS = ("studio_id", "title", "starts_at", "ends_at", "streams")
SPEAKER_FIELDS = ("segment_id", "name", "title", "organisation", "languages")


def _studio_values(data: Mapping[str, Any], fields: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "slug" in fields:
        slug = data.get("slug")
        if not isinstance(slug, str) or not SLUG.fullmatch(slug):
            raise _invalid("studio", "slug", "letters, digits, - and _ (at most 64), such as buenos-aires")
        out["slug"] = slug
    for field, limit in (("name", 200), ("city", 100), ("country", 100)):
        if field in fields:
            out[field] = _text("studio", data, field, limit)
    if "timezone" in fields:
        out["timezone"] = _file_rule(
            "studio", "timezone", lambda: event_loader.zone_info(data.get("timezone"), "timezone").key
        )
    if "host_languages" in fields:
        out["host_languages"] = _languages("studio", data, "host_languages")
    if "streams" in fields:
        out["streams"] = _streams("studio", data)
    return out


def _speaker_values(data: Mapping[str, Any], fields: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "name" in fields:
        out["name"] = _text("speaker", data, "name", 200)
    for field in ("title", "organisation"):
        if field in fields:
            out[field] = _text("speaker", data, field, 200, required=False)
    if "languages" in fields:
        out["languages"] = _languages("speaker", data, "languages")
    if "segment_id" in fields:
        out["segment_id"] = _id("speaker", data, "segment_id")
    return out


def _drop_stale_translations(record: Studio | Segment | Speaker, before: dict[str, Any]) -> None:
    """A changed text's translations are of the old text: drop them (the workers translate the new one)."""
    i18n = dict(record.i18n or {})
    for field in list(i18n):
        if getattr(record, field, None) != before.get(field):
            del i18n[field]
    record.i18n = i18n


# ── look-ups inside the transaction ──────────────────────────────────────────
def _studio(ed: Editing, studio_id: int) -> Studio:
    studio = ed.db.exec(select(Studio).where(Studio.id == studio_id, Studio.event_id == ed.event_id)).first()
    if studio is None:
        raise NotFound("studio.unknown", f"there is no studio {studio_id}")
    return studio


def _segment(ed: Editing, segment_id: int) -> Segment:
    seg = ed.db.exec(
        select(Segment).where(Segment.id == segment_id, Segment.event_id == ed.event_id).with_for_update()
    ).first()
    if seg is None:
        raise NotFound("segment.unknown", f"there is no segment {segment_id}")
    return seg


def _speaker(ed: Editing, speaker_id: int) -> Speaker:
    sp = ed.db.exec(
        select(Speaker)
        .join(Segment, col(Segment.id) == col(Speaker.segment_id))
        .where(Speaker.id == speaker_id, Segment.event_id == ed.event_id)
    ).first()
    if sp is None:
        raise NotFound("speaker.unknown", f"there is no speaker {speaker_id}")
    return sp


def _questions(db: Session, column: Any, value: int) -> int:
    return int(db.exec(sa.select(sa.func.count()).select_from(Question).where(column == value)).one()[0])  # type: ignore[call-overload]


def _refuse_if_asked(db: Session, kind: str, column: Any, record_id: int, what: str) -> None:
    n = _questions(db, column, record_id)
    if n:
        raise Conflict(
            f"{kind}.has_questions",
            f"{kind} {record_id} has {n} question(s): {what}",
            questions=n,
        )


def _unique_slug(ed: Editing, slug: str, studio_id: int | None) -> None:
    other = ed.db.exec(select(Studio).where(Studio.event_id == ed.event_id, Studio.slug == slug)).first()
    if other is not None and other.id != studio_id:
        raise Conflict("studio.slug_taken", f"another studio is already called {slug!r}", studio_id=other.id)


def _unique_title(ed: Editing, studio_id: int, title: str, segment_id: int | None) -> None:
    other = ed.db.exec(select(Segment).where(Segment.studio_id == studio_id, Segment.title == title)).first()
    if other is not None and other.id != segment_id:
        raise Conflict("segment.title_taken", f"the studio already has a segment {title!r}", segment_id=other.id)


def _unique_name(ed: Editing, segment_id: int, name: str, speaker_id: int | None) -> None:
    other = ed.db.exec(select(Speaker).where(Speaker.segment_id == segment_id, Speaker.name == name)).first()
    if other is not None and other.id != speaker_id:
        raise Conflict("speaker.name_taken", f"the segment already has a speaker {name!r}", speaker_id=other.id)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# ── studios ──────────────────────────────────────────────────────────────────
def create_studio(ctx: Context, event_id: int, data: Mapping[str, Any], actor: str) -> dict[str, Any]:
    data = _known("studio", data, STUDIO_FIELDS)
    values = _studio_values(data, set(STUDIO_FIELDS))
    with editing(ctx, event_id, actor) as ed:
        _unique_slug(ed, values["slug"], None)
        studio = Studio(event_id=ed.event_id, **values)
        ed.db.add(studio)
        ed.db.flush()
        ed.audit("studio_add", None, studio_view(studio))
        return studio_view(studio)


def update_studio(ctx: Context, event_id: int, studio_id: int, data: Mapping[str, Any], actor: str) -> dict[str, Any]:
    data = _known("studio", data, STUDIO_FIELDS)
    values = _studio_values(data, set(data))
    with editing(ctx, event_id, actor) as ed:
        studio = _studio(ed, studio_id)
        if "slug" in values:
            _unique_slug(ed, values["slug"], studio_id)
        before = studio_view(studio)
        for field, value in values.items():
            setattr(studio, field, value)
        _drop_stale_translations(studio, before)
        after = studio_view(studio)
        if after != before:
            ed.db.add(studio)
            ed.audit("studio_update", before, after)
        return after


def delete_studio(ctx: Context, event_id: int, studio_id: int, actor: str) -> dict[str, Any]:
    """A studio nobody asked anything in, with its segments and their speakers."""
    with editing(ctx, event_id, actor) as ed:
        studio = _studio(ed, studio_id)
        _refuse_if_asked(ed.db, "studio", Question.studio_id, studio_id, "end its segments instead")
        segments = list(ed.db.exec(select(Segment).where(Segment.studio_id == studio_id).with_for_update()))
        removed = [_remove_segment(ed, seg) for seg in segments]
        before = studio_view(studio) | {"segments": removed}
        # Its host links go with it (they could open nothing any more).
        ed.db.exec(sa.delete(HostLink).where(col(HostLink.studio_id) == studio_id))  # type: ignore[call-overload]
        ed.db.delete(studio)
        ed.audit("studio_delete", before, None)
        return {"deleted": studio_id}


# ── segments ─────────────────────────────────────────────────────────────────
def create_segment(ctx: Context, event_id: int, data: Mapping[str, Any], actor: str) -> dict[str, Any]:
    data = _known("segment", data, SEGMENT_FIELDS)
    with editing(ctx, event_id, actor) as ed:
        studio = _studio(ed, _id("segment", data, "studio_id"))
        assert studio.id is not None
        title = _text("segment", data, "title", 200)
        starts, ends = _when(data, "starts_at", studio.timezone), _when(data, "ends_at", studio.timezone)
        if ends <= starts:
            raise _invalid("segment", "ends_at", "the end must be after the start")
        _unique_title(ed, studio.id, title, None)
        seg = Segment(
            event_id=ed.event_id,
            studio_id=studio.id,
            title=title,
            starts_at=starts,
            ends_at=ends,
            streams=_streams("segment", data),
        )
        seg.status = clock_status(seg, _now())
        ed.db.add(seg)
        ed.db.flush()
        ed.audit("segment_add", None, segment_view(seg), segment_id=seg.id)
        return segment_view(seg)


def update_segment(ctx: Context, event_id: int, segment_id: int, data: Mapping[str, Any], actor: str) -> dict[str, Any]:
    """Title, studio, times, streams. ``version`` (optional): the segment's version you
    saw; a segment changed since is refused (409 segment.stale_version)."""
    data = _known("segment", data, SEGMENT_FIELDS)
    with editing(ctx, event_id, actor) as ed:
        seg = _segment(ed, segment_id)
        expected = data.get("version")
        if expected is not None and _id("segment", data, "version") != seg.version:
            raise Conflict("segment.stale_version", f"segment {segment_id} changed meanwhile", version=seg.version)
        before = segment_view(seg)
        if "studio_id" in data:
            studio = _studio(ed, _id("segment", data, "studio_id"))
            if studio.id != seg.studio_id:
                _refuse_if_asked(
                    ed.db, "segment", Question.segment_id, segment_id, "its questions belong to its studio's queue"
                )
                assert studio.id is not None
                seg.studio_id = studio.id
        else:
            studio = _studio(ed, seg.studio_id)
        if "title" in data:
            seg.title = _text("segment", data, "title", 200)
        if "starts_at" in data:
            seg.starts_at = _when(data, "starts_at", studio.timezone)
        if "ends_at" in data:
            seg.ends_at = _when(data, "ends_at", studio.timezone)
        if seg.ends_at <= seg.starts_at:
            raise _invalid("segment", "ends_at", "the end must be after the start")
        if "streams" in data:
            seg.streams = _streams("segment", data)
        _unique_title(ed, seg.studio_id, seg.title, segment_id)
        if not seg.status_manual:
            seg.status = clock_status(seg, _now())
        _drop_stale_translations(seg, before)
        if segment_view(seg) != before:
            seg.version += 1  # (row-locked) clients keep the newer of a segment.updated and this
            ed.db.add(seg)
            ed.audit("segment_update", before, segment_view(seg), segment_id=segment_id)
        return segment_view(seg)


def _remove_segment(ed: Editing, seg: Segment) -> dict[str, Any]:
    """Delete a segment nobody asked anything in, with its speakers; returns what it was.
    Audit rows that name it keep it in their before/after (their segment_id goes)."""
    assert seg.id is not None
    view = segment_view(seg)
    speakers = list(ed.db.exec(select(Speaker).where(Speaker.segment_id == seg.id)))
    view["speakers"] = [speaker_view(sp) for sp in speakers]
    for sp in speakers:
        ed.db.delete(sp)
    ed.db.exec(
        sa.update(ModerationAction).where(col(ModerationAction.segment_id) == seg.id).values(segment_id=None)  # type: ignore[call-overload]
    )
    ed.db.flush()
    ed.db.delete(seg)
    return view


def delete_segment(ctx: Context, event_id: int, segment_id: int, actor: str) -> dict[str, Any]:
    with editing(ctx, event_id, actor) as ed:
        seg = _segment(ed, segment_id)
        _refuse_if_asked(ed.db, "segment", Question.segment_id, segment_id, "end it instead")
        before = _remove_segment(ed, seg)
        ed.audit("segment_delete", before, None)
        return {"deleted": segment_id}


# ── speakers ─────────────────────────────────────────────────────────────────
def create_speaker(ctx: Context, event_id: int, data: Mapping[str, Any], actor: str) -> dict[str, Any]:
    data = _known("speaker", data, SPEAKER_FIELDS)
    values = _speaker_values(data, set(SPEAKER_FIELDS))
    with editing(ctx, event_id, actor) as ed:
        seg = _segment(ed, values["segment_id"])
        _unique_name(ed, values["segment_id"], values["name"], None)
        sp = Speaker(**values)
        ed.db.add(sp)
        ed.db.flush()
        ed.audit("speaker_add", None, speaker_view(sp), segment_id=seg.id)
        return speaker_view(sp)


def update_speaker(ctx: Context, event_id: int, speaker_id: int, data: Mapping[str, Any], actor: str) -> dict[str, Any]:
    """Name, title, organisation, languages (best first), or another segment (a speaker
    with questions stays in theirs: their questions are queued there)."""
    data = _known("speaker", data, SPEAKER_FIELDS)
    values = _speaker_values(data, set(data))
    with editing(ctx, event_id, actor) as ed:
        sp = _speaker(ed, speaker_id)
        before = speaker_view(sp)
        if "segment_id" in values and values["segment_id"] != sp.segment_id:
            _segment(ed, values["segment_id"])
            _refuse_if_asked(
                ed.db, "speaker", Question.speaker_id, speaker_id, "add them to the other segment as a new speaker"
            )
        for field, value in values.items():
            setattr(sp, field, value)
        _unique_name(ed, sp.segment_id, sp.name, speaker_id)
        _drop_stale_translations(sp, before)
        after = speaker_view(sp)
        if after != before:
            ed.db.add(sp)
            ed.audit("speaker_update", before, after, segment_id=sp.segment_id)
        return after


def delete_speaker(ctx: Context, event_id: int, speaker_id: int, actor: str) -> dict[str, Any]:
    with editing(ctx, event_id, actor) as ed:
        sp = _speaker(ed, speaker_id)
        _refuse_if_asked(ed.db, "speaker", Question.speaker_id, speaker_id, "their questions stay theirs")
        before = speaker_view(sp)
        ed.db.delete(sp)
        ed.audit("speaker_delete", before, None)
        return {"deleted": speaker_id}
