"""Load an event schedule from YAML (see qa_service/sample/marathon.yaml).

Besides the programme itself: ``streams`` per studio or segment (services/streams.py)
and ``i18n``, translations of the programme per language (services/programme.py).
What the file does not translate, the workers do once, after the load
(workers/programme.py, queued by ``qa-service event load``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from sqlmodel import select

from ..db.models import Event, Segment, Speaker, Studio
from ..domain import asker
from ..domain.validation import LANGUAGE_CODE
from . import programme, streams
from .context import Context
from .schedule import clock_status

SAMPLE = Path(__file__).resolve().parent.parent / "sample" / "marathon.yaml"


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


def _streams(value: Any, where: str) -> dict[str, dict[str, str]]:
    if value is None:
        return {}
    try:
        return streams.parse(value)
    except streams.StreamError as exc:
        raise ScheduleError(f"{where}.streams: {exc}") from None


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
    event = {
        "slug": str(_req(ev, "slug", "event")),
        "name": str(_req(ev, "name", "event")),
        "moderator_language": _langs([_req(ev, "moderator_language", "event")], "event.moderator_language")[0],
        "viewer_languages": _langs(_req(ev, "viewer_languages", "event"), "event.viewer_languages"),
        "options": _options(ev),
    }
    # The language the programme is written in: what the workers translate from.
    source = _langs([ev.get("programme_language", "en")], "event.programme_language")[0]
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
        start = datetime.combine(day, _clock(_req(sg, "start", where), where), zone)
        end = datetime.combine(day, _clock(_req(sg, "end", where), where), zone)
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


def load_event(ctx: Context, path: Path, *, shift_to: datetime | None = None, today: date | None = None) -> Loaded:
    """:func:`load`, also naming the programme's language (for the translation job)."""
    from datetime import UTC

    now = datetime.now(UTC)
    data = parse(path.read_text(encoding="utf-8"), today=today or now.date(), shift_to=shift_to)
    now = now.replace(tzinfo=None)
    with ctx.transaction() as (db, _):
        ev = db.exec(select(Event).where(Event.slug == data["event"]["slug"])).first() or Event(**data["event"])
        for k, v in data["event"].items():
            setattr(ev, k, v)
        db.add(ev)
        db.flush()
        assert ev.id is not None
        by_slug: dict[str, Studio] = {}
        for record in data["studios"]:
            st, given = _given(record)
            studio = db.exec(select(Studio).where(Studio.event_id == ev.id, Studio.slug == st["slug"])).first()
            studio = studio or Studio(event_id=ev.id, **st)
            for k, v in st.items():
                setattr(studio, k, v)
            studio.i18n = programme.merge(
                studio.i18n, given, {f: getattr(studio, f) for f in programme.GIVEN["studio"]}
            )
            db.add(studio)
            db.flush()
            by_slug[st["slug"]] = studio
        for sg in data["segments"]:
            studio = by_slug[sg["studio"]]
            assert studio.id is not None
            seg = db.exec(
                select(Segment).where(
                    Segment.event_id == ev.id, Segment.studio_id == studio.id, Segment.title == sg["title"]
                )
            ).first() or Segment(
                event_id=ev.id, studio_id=studio.id, title=sg["title"], starts_at=sg["start"], ends_at=sg["end"]
            )
            seg.starts_at, seg.ends_at = sg["start"], sg["end"]
            seg.streams = sg["streams"]
            seg.i18n = programme.merge(seg.i18n, sg["i18n"], {"title": seg.title})
            if not seg.status_manual:
                seg.status = clock_status(seg, now)
            db.add(seg)
            db.flush()
            assert seg.id is not None
            for record in sg["speakers"]:
                sp, given = _given(record)
                speaker = db.exec(
                    select(Speaker).where(Speaker.segment_id == seg.id, Speaker.name == sp["name"])
                ).first()
                speaker = speaker or Speaker(segment_id=seg.id, **sp)
                for k, v in sp.items():
                    setattr(speaker, k, v)
                originals = {f: getattr(speaker, f) for f in programme.GIVEN["speaker"]}
                speaker.i18n = programme.merge(speaker.i18n, given, originals)
                db.add(speaker)
        db.flush()
        return Loaded(ev.id, data["programme_language"])
