"""Translate the programme (studio names, segment titles, speaker titles) into the
event's viewer languages, once, after the event is loaded (an RQ job).

Only what the event file does not translate, and only what changed since the last
run: each machine translation keeps a hash of the text it came from
(qa_service/services/programme.py). A language no installed model reaches (directly
or through English) is left out: viewers read the original. The changes are
committed, then announced on the schedule channel (``programme.updated``), so open
viewer pages show them at once and every snapshot after holds them.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from typing import Any

from rq import Queue
from rq.job import Job
from sqlmodel import col, select

from qa_service.bus import channels
from qa_service.db.models import Event, Segment, Speaker, Studio
from qa_service.services import programme
from qa_service.services.context import Context

from .planner import path

log = logging.getLogger(__name__)
JOB = "workers.programme.translate_programme"
KINDS: dict[str, type[Studio] | type[Segment] | type[Speaker]] = {
    "studio": Studio,
    "segment": Segment,
    "speaker": Speaker,
}
Need = tuple[str, int, str, str, str]  # kind, record id, field, language, original text


def enqueue(queue: Queue, event_id: int, source: str, *, timeout: int = 600) -> Job:
    """Queue the programme's translation (``qa-service event load`` calls this after the load)."""
    return queue.enqueue(
        JOB,
        event_id,
        source,
        job_id=f"pg{event_id}-{uuid.uuid4().hex[:12]}",
        job_timeout=timeout,
        result_ttl=600,
        failure_ttl=24 * 3600,
    )


def translate_programme(event_id: int, source: str) -> dict[str, Any]:
    from . import runtime

    rt = runtime.get()
    rt.refresh_models()
    return translate(rt.ctx, event_id, source, rt.engine)


def _records(db: Any, event_id: int) -> dict[str, list[Any]]:
    studios = list(db.exec(select(Studio).where(Studio.event_id == event_id)))
    segments = list(db.exec(select(Segment).where(Segment.event_id == event_id)))
    seg_ids = [s.id for s in segments]
    speakers = list(db.exec(select(Speaker).where(col(Speaker.segment_id).in_(seg_ids)))) if seg_ids else []
    return {"studio": studios, "segment": segments, "speaker": speakers}


def needs(records: dict[str, list[Any]], languages: list[str], source: str) -> list[Need]:
    """Each field of each record that lacks a (current) translation into a language."""
    out: list[Need] = []
    for kind, rows in records.items():
        for row in rows:
            for field in programme.MACHINE[kind]:
                text = getattr(row, field)
                if not text or not text.strip():
                    continue
                for lang in languages:
                    if lang != source and programme.missing(row.i18n, field, text, lang):
                        out.append((kind, row.id, field, lang, text))
    return out


def _translate_each(engine: Any, route: list[str], texts: list[str]) -> list[str | None]:
    """One engine call for ``texts``; if it fails, each text alone, so a text the engine
    cannot take (too long for the model, say) stays in the original and costs no other."""
    try:
        return list(engine.translate_route(route, texts))
    except Exception as exc:  # an engine error: whose fault is not known
        if len(texts) == 1:
            log.warning("programme text not translated %s (%r): it stays in the original", "→".join(route), exc)
            return [None]
        return [out for text in texts for out in _translate_each(engine, route, [text])]


def translate(ctx: Context, event_id: int, source: str, engine: Any) -> dict[str, Any]:
    """Translate what the programme of ``event_id`` lacks, store it, announce it."""
    # 1. What is missing (a short read; no model work inside a transaction).
    with ctx.read() as db:
        event = db.get(Event, event_id)
        if event is None:
            return {"gone": event_id}
        todo = needs(_records(db, event_id), list(event.viewer_languages), source)
    # 2. One engine call per route, each text once.
    routes: dict[str, list[str]] = {}
    unreachable: set[str] = set()
    for *_, lang, _text in todo:
        route = path(source, lang, engine.pairs)
        if route is None:
            unreachable.add(lang)
        else:
            routes[lang] = route
    texts: dict[str, list[str]] = defaultdict(list)
    for *_, lang, text in todo:
        if lang in routes and text not in texts[lang]:
            texts[lang].append(text)
    done: dict[tuple[str, str], str] = {}
    for lang, group in texts.items():
        for text, out in zip(group, _translate_each(engine, routes[lang], group), strict=True):
            if out and out.strip():
                done[(lang, text)] = out.strip()
    if unreachable:
        log.info(
            "programme of event %s stays in %s for %s: no model reaches them", event_id, source, sorted(unreachable)
        )
    # 3. Store what still stands (the file may have been loaded again meanwhile), announce it.
    changed: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    rows: dict[tuple[str, int], Any] = {}
    with ctx.transaction() as (db, outbox):
        for kind, rid, field, lang, text in todo:
            translated = done.get((lang, text))
            if translated is None:
                continue
            if (kind, rid) not in rows:
                table = KINDS[kind]
                rows[(kind, rid)] = db.exec(select(table).where(col(table.id) == rid).with_for_update()).first()
            row = rows[(kind, rid)]
            if row is None or getattr(row, field) != text:
                continue
            if not programme.missing(row.i18n, field, text, lang):  # the file gave one meanwhile
                continue
            row.i18n = programme.with_machine(row.i18n, field, lang, text, translated)
            db.add(row)
            changed[kind][rid] = row.i18n
        db.flush()
        if changed:
            payload = {
                f"{kind}s": [{"id": rid, "i18n": programme.public(i18n)} for rid, i18n in by_id.items()]
                for kind, by_id in changed.items()
            }
            outbox.add(event_id, channels.SCHEDULE, "programme.updated", payload)
    count = sum(len(by_id) for by_id in changed.values())
    log.info("programme of event %s: %d text(s) machine-translated, %d record(s) changed", event_id, len(done), count)
    return {"translated": len(done), "records": count, "unreachable": sorted(unreachable)}
