"""Translate questions and store the results: one transaction per batch.

Plans each question (planner.py), groups the texts by route, runs one batched
engine call per route, caches by (text, route, model version), then writes
translations, never over a moderator's hand-edited one.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select

from qa_service.db.models import Event, Question, Speaker, Studio, Translation, utcnow
from qa_service.services import fanout
from qa_service.services.context import Context

from .planner import Plan, plan

log = logging.getLogger(__name__)
CACHE_TTL = 7 * 24 * 3600


class MissingModels(Exception):
    """Some needed language pairs are not installed (retried, then 'untranslated')."""


@dataclass
class BatchResult:
    done: list[int] = field(default_factory=list)
    missing: dict[int, list[str]] = field(default_factory=dict)


def _cache_key(prefix: str, route_version: str, text: str) -> str:
    digest = hashlib.sha256(f"{route_version}\x00{text}".encode()).hexdigest()[:32]
    return f"{prefix}:tcache:{digest}"


def translate_questions(ctx: Context, ids: list[int], engine: Any, detector_for: Any, cache: Any | None) -> BatchResult:
    """Translate the questions ``ids`` (those still needing it) and publish the changes."""
    # 1. Read what each question needs (short read transaction; no model work inside).
    work: dict[int, tuple[str, Plan, str | None]] = {}
    with ctx.read() as db:
        for q in db.exec(select(Question).where(col(Question.id).in_(ids))):
            if q.translation_state == "done" or q.id is None:
                continue
            speaker = db.get(Speaker, q.speaker_id)
            event = db.get(Event, q.event_id)
            studio = db.get(Studio, q.studio_id)
            if speaker is None or event is None or studio is None:
                continue
            p = plan(q.language, speaker.languages, event.moderator_language, studio.host_languages, engine.pairs)
            detector = detector_for(event)
            detected = detector.disagreement(q.text, q.language) if detector else None
            work[q.id] = (q.text, p, detected)

    # 2. Translate: one engine call per route, cache first.
    by_route: dict[tuple[str, ...], list[tuple[int, str, str]]] = defaultdict(list)
    for qid, (text, p, _) in work.items():
        for lang, route in p.targets.items():
            by_route[tuple(route)].append((qid, lang, text))
    results: dict[int, dict[str, tuple[str, str]]] = defaultdict(dict)
    for route_key, items in by_route.items():
        route = list(route_key)
        version = engine.route_version(route)
        texts: list[str] = [t for _, _, t in items]
        cached: list[str | None] = [None] * len(texts)
        if cache is not None:
            raw = cache.mget([_cache_key(ctx.settings.redis_prefix, version, t) for t in texts])
            cached = [r.decode() if isinstance(r, bytes) else r for r in raw]
        todo = [i for i, c in enumerate(cached) if c is None]
        if todo:
            fresh = engine.translate_route(route, [texts[i] for i in todo])
            for i, value in zip(todo, fresh, strict=True):
                cached[i] = value
                if cache is not None:
                    cache.set(_cache_key(ctx.settings.redis_prefix, version, texts[i]), value, ex=CACHE_TTL)
        for (qid, lang, _), value in zip(items, cached, strict=True):
            results[qid][lang] = (value or "", version)

    # 3. Store, skipping human edits; publish after commit.
    out = BatchResult()
    with ctx.transaction() as (db, outbox):
        for qid, (_text, p, detected) in work.items():
            row_q = db.exec(select(Question).where(Question.id == qid).with_for_update()).first()
            if row_q is None:
                continue
            q = row_q
            existing = {t.language: t for t in db.exec(select(Translation).where(Translation.question_id == qid))}
            for lang, (value, version) in results.get(qid, {}).items():
                row = existing.get(lang)
                if row is not None and row.engine == "human":
                    continue  # a moderator's fix wins over any machine result, late or not
                row = row or Translation(question_id=qid, language=lang, text=value, engine="argos")
                row.text, row.engine, row.model_version, row.updated_at = value, "argos", version, utcnow()
                db.add(row)
            q.detected_language = detected
            if p.missing:
                q.translation_error = "; ".join(p.missing)[:300]
                out.missing[qid] = p.missing
            else:
                q.translation_state, q.translation_error = "done", None
                out.done.append(qid)
            q.updated_at = utcnow()
            db.add(q)
            db.flush()
            fanout.question_changed(db, outbox, q, old_status=q.status)
    return out


def mark_untranslated(ctx: Context, qid: int, reason: str) -> None:
    """Give up on machine translation; moderators can still read, edit and approve."""
    with ctx.transaction() as (db, outbox):
        q = db.exec(select(Question).where(Question.id == qid).with_for_update()).first()
        if q is None or q.translation_state == "done":
            return
        q.translation_state, q.translation_error, q.updated_at = "untranslated", reason[:300], utcnow()
        db.add(q)
        db.flush()
        fanout.question_changed(db, outbox, q, old_status=q.status)


def pending_ids(ctx: Context) -> list[int]:
    with ctx.read() as db:
        ids = db.exec(select(Question.id).where(Question.translation_state == "pending").order_by(col(Question.id)))
        return [i for i in ids if i is not None]
