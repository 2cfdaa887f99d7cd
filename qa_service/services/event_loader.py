"""Load an event schedule from YAML (see qa_service/sample/marathon.yaml).

Besides the programme itself: ``streams`` per studio or segment (services/streams.py)
and ``i18n``, translations of the programme per language (services/programme.py).
What the file does not translate, the workers do once, after the load
(workers/programme.py, queued by ``qa-service event load``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from sqlmodel import Session, col, select

from ..db.models import Event, Segment, Speaker, Studio
from ..domain import asker
from ..domain.validation import LANGUAGE_CODE
from . import programme, streams
from .context import Context
from .schedule import clock_status
from .views import segment_view, speaker_view, studio_view

SAMPLE = Path(__file__).resolve().parent.parent / "sample" / "marathon.yaml"
LOAD_ACTOR = "cli:event-load"  # who the audit log names for a reload's changes
# Event.options key of the file's own settings: {"timezone", "language"} (the programme's).
PROGRAMME = "programme"


class ScheduleError(ValueError):
    pass


def _req(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d or d[key] in (None, ""):
        raise ScheduleError(f"{where}: '{key}' is required")
    return d[key]


def _langs(value: Any, where: str) -> list[str]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and LANGUAGE_CODE.match(v) for v in value)
    ):
        raise ScheduleError(f"{where}: languages must be a non-empty list of codes such as [ar, en]")
    return [v.lower() for v in value]


def _zone(name: Any, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"{where}: unknown time zone {name!r}") from None


def _clock(value: Any, where: str) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise ScheduleError(f"{where}: time must look like 09:30, not {value!r}") from None


def _moment(value: Any, day: date, zone: ZoneInfo, where: str) -> datetime:
    """A segment's start or end: a time on the event's ``date`` ("09:30"), or a local date
    and time of another day ("2030-01-08 00:30": past midnight, a marathon of several days)."""
    if isinstance(value, datetime):  # YAML reads an unquoted 2030-01-08 00:30 as one
        local = value.replace(tzinfo=None)
    elif isinstance(value, str) and "-" in value:  # a date first
        try:
            local = datetime.fromisoformat(value)
        except ValueError:
            raise ScheduleError(f"{where}: must look like 09:30 or 2030-01-08 00:30, not {value!r}") from None
        if local.tzinfo is not None:
            raise ScheduleError(f"{where}: a local time of the event's time zone, without an offset: {value!r}")
    else:
        local = datetime.combine(day, _clock(value, where))
    return local.replace(tzinfo=zone)


def _streams(value: Any, where: str) -> dict[str, dict[str, str]]:
    if value is None:
        return {}
    try:
        return streams.parse(value)
    except streams.StreamError as exc:
        raise ScheduleError(f"{where}.streams: {exc}") from None


# The file's rules, reused by the admin's live edits (services/event_admin.py).
langs, zone_info, stream_specs = _langs, _zone, _streams


def _i18n(value: Any, kind: str, where: str) -> dict[str, dict[str, str]]:
    """``i18n: {ru: {title: "…"}, de: {…}}`` of a studio, segment or speaker."""
    if value is None:
        return {}
    allowed = programme.GIVEN[kind]
    if not isinstance(value, dict):
        raise ScheduleError(f"{where}.i18n: must map languages to fields, e.g. {{ru: {{{allowed[0]}: …}}}}")
    out: dict[str, dict[str, str]] = {}
    for lang, fields in value.items():
        if not isinstance(lang, str) or not LANGUAGE_CODE.match(lang):
            raise ScheduleError(f"{where}.i18n: {lang!r} is not a language code such as ru or pt-BR")
        if not isinstance(fields, dict) or not fields:
            raise ScheduleError(f"{where}.i18n.{lang}: must map fields ({', '.join(allowed)}) to text")
        for field, text in fields.items():
            if field not in allowed:
                raise ScheduleError(f"{where}.i18n.{lang}: unknown field {field!r} (one of {', '.join(allowed)})")
            if not isinstance(text, str | int | float) or not str(text).strip():
                raise ScheduleError(f"{where}.i18n.{lang}.{field}: must be non-empty text")
            out.setdefault(lang.lower(), {})[field] = str(text).strip()
    return out


def _options(ev: dict[str, Any]) -> dict[str, Any]:
    """What the event asks of viewers besides the question (domain/asker.py)."""
    try:
        return asker.parse_options(ev)
    except ValueError as exc:
        raise ScheduleError(str(exc)) from None


def parse(text: str, *, today: date, shift_to: datetime | None = None) -> dict[str, Any]:
    """Validate the YAML and return plain records with UTC start and end times.
    ``shift_to`` moves the whole day so the first segment starts then (demos)."""
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise ScheduleError("the file must be a YAML mapping with event, studios and segments")
    ev = _req(doc, "event", "file")
    zone = _zone(ev.get("timezone", "UTC"), "event")
    day = today if str(ev.get("date", "today")) == "today" else date.fromisoformat(str(ev["date"]))
    event: dict[str, Any] = {
        "slug": str(_req(ev, "slug", "event")),
        "name": str(_req(ev, "name", "event")),
        "moderator_language": _langs([_req(ev, "moderator_language", "event")], "event.moderator_language")[0],
        "viewer_languages": _langs(_req(ev, "viewer_languages", "event"), "event.viewer_languages"),
        "options": _options(ev),
    }
    # The language the programme is written in: what the workers translate from.
    source = _langs([ev.get("programme_language", "en")], "event.programme_language")[0]
    # Kept for `event export` (the file's times are local times of this zone).
    event["options"] = {**event["options"], PROGRAMME: {"timezone": zone.key, "language": source}}
    studios = []
    for i, st in enumerate(_req(doc, "studios", "file")):
        where = f"studios[{i}]"
        _zone(_req(st, "timezone", where), where)
        studios.append(
            {
                "slug": str(_req(st, "slug", where)),
                "name": str(_req(st, "name", where)),
                "city": str(_req(st, "city", where)),
                "country": str(_req(st, "country", where)),
                "timezone": str(st["timezone"]),
                "host_languages": _langs(_req(st, "host_languages", where), where),
                "streams": _streams(st.get("streams"), where),
                "i18n": _i18n(st.get("i18n"), "studio", where),
            }
        )
    slugs = {s["slug"] for s in studios}
    segments = []
    for i, sg in enumerate(_req(doc, "segments", "file")):
        where = f"segments[{i}]"
        if _req(sg, "studio", where) not in slugs:
            raise ScheduleError(f"{where}: unknown studio {sg['studio']!r}")
        start = _moment(_req(sg, "start", where), day, zone, f"{where}.start")
        end = _moment(_req(sg, "end", where), day, zone, f"{where}.end")
        if end <= start:
            raise ScheduleError(f"{where}: end must be after start")
        speakers = []
        for j, sp in enumerate(_req(sg, "speakers", where)):
            w = f"{where}.speakers[{j}]"
            speakers.append(
                {
                    "name": str(_req(sp, "name", w)),
                    "title": str(sp.get("title", "")),
                    "organisation": str(sp.get("organisation", "")),
                    "languages": _langs(_req(sp, "languages", w), w),
                    "i18n": _i18n(sp.get("i18n"), "speaker", w),
                }
            )
        segments.append(
            {
                "studio": sg["studio"],
                "title": str(_req(sg, "title", where)),
                "start": start,
                "end": end,
                "speakers": speakers,
                "streams": _streams(sg.get("streams"), where),
                "i18n": _i18n(sg.get("i18n"), "segment", where),
            }
        )
    if shift_to is not None and segments:
        delta = shift_to - min(s["start"] for s in segments)
        for s in segments:
            s["start"], s["end"] = s["start"] + delta, s["end"] + delta
    for s in segments:
        s["start"] = s["start"].astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
        s["end"] = s["end"].astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
    return {"event": event, "studios": studios, "segments": segments, "programme_language": source}


@dataclass(frozen=True)
class Loaded:
    event_id: int
    programme_language: str  # what the workers translate the programme from


def _given(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """A parsed record without its translations, and its translations."""
    fields = dict(record)
    return fields, fields.pop("i18n")


def load(ctx: Context, path: Path, *, shift_to: datetime | None = None, today: date | None = None) -> int:
    """Create or update the event (matched by slug; studios by slug, segments by
    studio and title, speakers by name). Nothing is deleted. Returns the event id."""
    return load_event(ctx, path, shift_to=shift_to, today=today).event_id


def load_event(
    ctx: Context,
    path: Path,
    *,
    shift_to: datetime | None = None,
    today: date | None = None,
    actor: str = LOAD_ACTOR,
) -> Loaded:
    """:func:`load`, also naming the programme's language (for the translation job).

    Over a running event only what differs changes: each changed record gets an audit
    row (``actor``, ``event.<kind>_add`` / ``_update``, before, after), a changed segment
    a new version, and once committed one ``schedule.updated`` announces the programme
    (services/event_admin.py). A load that changes nothing writes and announces nothing;
    the first load of an event is its creation, not a change: no audit rows."""
    from . import event_admin  # it reuses this module's rules

    now = datetime.now(UTC)
    data = parse(path.read_text(encoding="utf-8"), today=today or now.date(), shift_to=shift_to)
    now = now.replace(tzinfo=None)
    with ctx.transaction() as (db, outbox):
        ev = db.exec(select(Event).where(Event.slug == data["event"]["slug"]).with_for_update(key_share=True)).first()
        created = ev is None
        ev = ev or Event(**data["event"])
        was: dict[str, Any] | None = _event_fields(ev)
        for k, v in data["event"].items():
            setattr(ev, k, v)
        db.add(ev)
        db.flush()
        assert ev.id is not None
        ed = event_admin.Editing(db, ev, actor)
        audit = _Audit(ed, quiet=created)
        audit.changed("event_update", was, _event_fields(ev))
        by_slug: dict[str, Studio] = {}
        for record in data["studios"]:
            st, given = _given(record)
            studio = db.exec(select(Studio).where(Studio.event_id == ev.id, Studio.slug == st["slug"])).first()
            before = studio_view(studio) if studio else None
            studio = studio or Studio(event_id=ev.id, **st)
            for k, v in st.items():
                setattr(studio, k, v)
            studio.i18n = programme.merge(
                studio.i18n, given, {f: getattr(studio, f) for f in programme.GIVEN["studio"]}
            )
            db.add(studio)
            db.flush()
            audit.changed("studio_update" if before else "studio_add", before, studio_view(studio))
            by_slug[st["slug"]] = studio
        for sg in data["segments"]:
            studio = by_slug[sg["studio"]]
            assert studio.id is not None
            seg = db.exec(
                select(Segment)
                .where(Segment.event_id == ev.id, Segment.studio_id == studio.id, Segment.title == sg["title"])
                .with_for_update()
            ).first()
            before = segment_view(seg) if seg else None
            seg = seg or Segment(
                event_id=ev.id, studio_id=studio.id, title=sg["title"], starts_at=sg["start"], ends_at=sg["end"]
            )
            seg.starts_at, seg.ends_at = sg["start"], sg["end"]
            seg.streams = sg["streams"]
            seg.i18n = programme.merge(seg.i18n, sg["i18n"], {"title": seg.title})
            if not seg.status_manual:
                seg.status = clock_status(seg, now)
            if before is not None and segment_view(seg) != before:
                seg.version += 1  # (row-locked) a client keeps the newer of this and a segment.updated
            db.add(seg)
            db.flush()
            assert seg.id is not None
            audit.changed("segment_update" if before else "segment_add", before, segment_view(seg), seg.id)
            for record in sg["speakers"]:
                sp, given = _given(record)
                speaker = db.exec(
                    select(Speaker).where(Speaker.segment_id == seg.id, Speaker.name == sp["name"])
                ).first()
                before = speaker_view(speaker) if speaker else None
                speaker = speaker or Speaker(segment_id=seg.id, **sp)
                for k, v in sp.items():
                    setattr(speaker, k, v)
                originals = {f: getattr(speaker, f) for f in programme.GIVEN["speaker"]}
                speaker.i18n = programme.merge(speaker.i18n, given, originals)
                db.add(speaker)
                db.flush()
                audit.changed("speaker_update" if before else "speaker_add", before, speaker_view(speaker), seg.id)
        db.flush()
        ed.announce(outbox)
        return Loaded(ev.id, data["programme_language"])


def _event_fields(ev: Event) -> dict[str, Any]:
    return {
        "slug": ev.slug,
        "name": ev.name,
        "moderator_language": ev.moderator_language,
        "viewer_languages": list(ev.viewer_languages or []),
        "options": ev.options,
    }


@dataclass
class _Audit:
    """A load's audit: a row per record that differs (none while creating the event)."""

    ed: Any  # event_admin.Editing
    quiet: bool

    def changed(
        self, action: str, before: dict[str, Any] | None, after: dict[str, Any], segment_id: int | None = None
    ) -> None:
        if not self.quiet and before != after:
            self.ed.audit(action, before, after, segment_id=segment_id)


# ── export: the running event as an event file ──────────────────────────────
def event_zone(db: Session, event: Event) -> str:
    """The time zone of the event file's times: the file's own (kept at load), else the
    first studio's, else UTC."""
    kept = (event.options or {}).get(PROGRAMME) or {}
    if isinstance(kept.get("timezone"), str):
        return str(kept["timezone"])
    first = db.exec(select(Studio).where(Studio.event_id == event.id).order_by(col(Studio.id))).first()
    return first.timezone if first else "UTC"


def _given_i18n(i18n: dict[str, Any], fields: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """The translations written by people (the file's, ``machine: false``), as the file holds them."""
    out: dict[str, dict[str, str]] = {}
    for field in fields:
        for lang, entry in sorted(((i18n or {}).get(field) or {}).items()):
            if isinstance(entry, dict) and not entry.get("machine") and isinstance(entry.get("text"), str):
                out.setdefault(lang, {})[field] = entry["text"]
    return {lang: out[lang] for lang in sorted(out)}


def _local(when: datetime, zone: ZoneInfo, day: date) -> str:
    local = when.replace(tzinfo=UTC).astimezone(zone)
    clock = local.time().isoformat("microseconds" if local.microsecond else "seconds" if local.second else "minutes")
    return clock if local.date() == day else f"{local.date().isoformat()} {clock}"


def export(ctx: Context, slug: str | None) -> str:
    """The event ``slug`` (default: the first loaded) as an event file: what ``event load``
    reads, so export → load on an empty database → export gives the same file. Segment
    times are local times of the event's time zone on ``date`` (another day's with their
    date). Not in it: statuses set by hand, and machine translations (made again)."""
    from .questions import event_by_slug

    with ctx.read() as db:
        event = event_by_slug(db, slug)
        if event is None:
            raise ScheduleError("no event is loaded" + (f" with the slug {slug!r}" if slug else ""))
        zone = ZoneInfo(event_zone(db, event))
        options = dict(event.options or {})
        kept = options.pop(PROGRAMME, None) or {}
        studios = list(db.exec(select(Studio).where(Studio.event_id == event.id).order_by(col(Studio.id))))
        segments = list(
            db.exec(
                select(Segment).where(Segment.event_id == event.id).order_by(col(Segment.starts_at), col(Segment.id))
            )
        )
        speakers: dict[int, list[Speaker]] = {}
        if segments:
            ids = [s.id for s in segments]
            for sp in db.exec(select(Speaker).where(col(Speaker.segment_id).in_(ids)).order_by(col(Speaker.id))):
                speakers.setdefault(sp.segment_id, []).append(sp)
    slugs = {s.id: s.slug for s in studios}
    day = (
        min(s.starts_at for s in segments).replace(tzinfo=UTC).astimezone(zone).date()
        if segments
        else datetime.now(UTC).astimezone(zone).date()
    )
    ev: dict[str, Any] = {
        "slug": event.slug,
        "name": event.name,
        "moderator_language": event.moderator_language,
        "viewer_languages": list(event.viewer_languages),
        "date": day.isoformat(),
        "timezone": zone.key,
        "programme_language": kept.get("language", "en"),
    }
    if options.get("asker_fields"):
        ev["asker_fields"] = [
            {"key": f["key"], "label": f["labels"], "max_chars": f["max_chars"], "required": f["required"]}
            for f in options["asker_fields"]
        ]
    if options.get("contact"):
        ev["contact"] = dict(options["contact"])

    def extras(record: Studio | Segment | Speaker, kind: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if getattr(record, "streams", None):
            out["streams"] = {lang: dict(spec) for lang, spec in record.streams.items()}  # type: ignore[union-attr, arg-type]
        given = _given_i18n(record.i18n, programme.GIVEN[kind])
        if given:
            out["i18n"] = given
        return out

    doc = {
        "event": ev,
        "studios": [
            {
                "slug": s.slug,
                "name": s.name,
                "city": s.city,
                "country": s.country,
                "timezone": s.timezone,
                "host_languages": list(s.host_languages),
                **extras(s, "studio"),
            }
            for s in studios
        ],
        "segments": [
            {
                "studio": slugs[g.studio_id],
                "title": g.title,
                "start": _local(g.starts_at, zone, day),
                "end": _local(g.ends_at, zone, day),
                **extras(g, "segment"),
                "speakers": [
                    {
                        "name": sp.name,
                        **({"title": sp.title} if sp.title else {}),
                        **({"organisation": sp.organisation} if sp.organisation else {}),
                        "languages": list(sp.languages),
                        **extras(sp, "speaker"),
                    }
                    for sp in speakers.get(g.id or 0, [])
                ],
            }
            for g in segments
        ],
    }
    header = f"# Exported from the running event {event.slug!r}; load with: qa-service event load FILE\n"
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)
