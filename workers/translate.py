"""Translate questions and store the results: one transaction per batch.

Plans each question (planner.py), groups the texts by route, runs one batched
engine call per route, caches by (text, route, model version), then writes
translations, never over a moderator's hand-edited one, and only if the question
still has the text and language it was translated from. A route without a model
ends the question 'untranslated' at once (waiting would not install one); what
could be translated is stored all the same. Why a question is untranslated is
stored as a code (qa_service.domain.translation_problem), never as engine text.
The same transaction finds the earlier open questions that read alike
(services/similar.py), so the event that brings the translations brings them too.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select

from qa_service.db.models import Event, Question, Speaker, Studio, Translation, utcnow
from qa_service.domain.translation_problem import GONE, Problem
from qa_service.services import fanout, similar
from qa_service.services.context import Context

from . import metrics
from .planner import Plan, missing_problem, missing_reason, plan

log = logging.getLogger(__name__)
CACHE_TTL = 7 * 24 * 3600


@dataclass
class Work:
    """What step 1 read of one question: step 3 writes only if it still holds."""

    text: str
    language: str
    plan: Plan
    detected: str | None
    gone: bool = False  # its speaker, studio or event no longer exists: no plan can be made
    moderator_language: str | None = None  # the event's: similar questions are compared in it


@dataclass
class BatchResult:
    done: list[int] = field(default_factory=list)
    untranslated: dict[int, str] = field(default_factory=dict)  # no model for a route: final, with the problem
    stale: list[int] = field(default_factory=list)  # re-translated meanwhile: left to the job that queued
    announced: list[int] = field(default_factory=list)  # changed in the database, so an event went out


def _cache_key(prefix: str, route_version: str, text: str) -> str:
    digest = hashlib.sha256(f"{route_version}\x00{text}".encode()).hexdigest()[:32]
    return f"{prefix}:tcache:{digest}"


def translate_questions(ctx: Context, ids: list[int], engine: Any, detector_for: Any, cache: Any | None) -> BatchResult:
    """Translate the questions ``ids`` (those still needing it) and publish the changes."""
    # 1. Read what each question needs (short read transaction; no model work inside).
    work: dict[int, Work] = {}
    with ctx.read() as db:
        for q in db.exec(select(Question).where(col(Question.id).in_(ids))):
            if q.translation_state == "done" or q.id is None:
                continue
            speaker = db.get(Speaker, q.speaker_id)
            event = db.get(Event, q.event_id)
            studio = db.get(Studio, q.studio_id)
            if speaker is None or event is None or studio is None:
                work[q.id] = Work(q.text, q.language, Plan(), None, gone=True)
                continue
            p = plan(q.language, speaker.languages, event.moderator_language, studio.host_languages, engine.pairs)
            detector = detector_for(event)
            detected = detector.disagreement(q.text, q.language) if detector else None
            work[q.id] = Work(q.text, q.language, p, detected, moderator_language=event.moderator_language)

    # 2. Translate: one engine call per route, cache first.
    results = _translate(ctx, work, engine, cache)
    if ctx.settings.worker_job_delay:
        time.sleep(ctx.settings.worker_job_delay)  # fault injection for tests: translated, not yet stored

    # 3. Store, skipping human edits and questions changed meanwhile; publish after commit.
    out = BatchResult()
    with ctx.transaction() as (db, outbox):
        for qid, w in sorted(work.items()):  # in order: a question sees the earlier ones of its batch
            locked = db.exec(select(Question).where(Question.id == qid).with_for_update()).first()
            if locked is None:
                continue
            q = locked
            if (q.text, q.language) != (w.text, w.language):
                out.stale.append(qid)  # a re-translate from another language queued its own job
                continue
            if q.translation_state == "done":
                out.done.append(qid)  # another job got there first
                continue
            before = (q.translation_state, q.translation_error, q.detected_language)
            rows_changed = _store(db, qid, results.get(qid, {}))
            similar_changed = False
            if w.moderator_language is not None:
                db.flush()  # the translations just written count
                similar_changed = similar.refresh(db, q, w.moderator_language)
            q.detected_language = w.detected
            if w.gone or w.plan.missing:
                problem = Problem(GONE) if w.gone else missing_problem(w.plan.missing, engine.pairs)
                if q.translation_state != "untranslated":  # said once, not at every sweep
                    why = (
                        "its speaker, studio or event is gone"
                        if w.gone
                        else missing_reason(w.plan.missing, engine.pairs)
                    )
                    log.info("question %s untranslated: %s", qid, why)
                q.translation_state, q.translation_error = "untranslated", problem.stored()
                out.untranslated[qid] = problem.stored()
            else:
                q.translation_state, q.translation_error = "done", None
                out.done.append(qid)
            after = (q.translation_state, q.translation_error, q.detected_language)
            if not rows_changed and not similar_changed and before == after:
                continue  # nothing new: no event
            q.updated_at = utcnow()
            db.add(q)
            db.flush()
            fanout.question_changed(db, outbox, q, old_status=q.status, texts_changed=rows_changed)
            out.announced.append(qid)
    return out


def _translate(
    ctx: Context, work: dict[int, Work], engine: Any, cache: Any | None
) -> dict[int, dict[str, tuple[str, str]]]:
    """{question: {language: (text, model version)}}: one engine call per route."""
    by_route: dict[tuple[str, ...], list[tuple[int, str, str]]] = defaultdict(list)
    for qid, w in work.items():
        for lang, route in w.plan.targets.items():
            by_route[tuple(route)].append((qid, lang, w.text))
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
        name = metrics.route_name(route)
        if len(todo) < len(texts):
            metrics.TRANSLATIONS.labels(name, "cached").inc(len(texts) - len(todo))
        if todo:
            started = time.perf_counter()
            try:
                fresh = engine.translate_route(route, [texts[i] for i in todo])
            except Exception:  # counted here, handled by the job (jobs.attempt)
                metrics.TRANSLATIONS.labels(name, "failed").inc(len(todo))
                raise
            finally:
                metrics.TRANSLATION_SECONDS.labels(name).observe(time.perf_counter() - started)
            metrics.TRANSLATIONS.labels(name, "translated").inc(len(todo))
            for i, value in zip(todo, fresh, strict=True):
                cached[i] = value
                if cache is not None:
                    cache.set(_cache_key(ctx.settings.redis_prefix, version, texts[i]), value, ex=CACHE_TTL)
        for (qid, lang, _), value in zip(items, cached, strict=True):
            results[qid][lang] = (value or "", version)
    return results


def _store(db: Any, qid: int, results: dict[str, tuple[str, str]]) -> bool:
    """Write machine results, never over a moderator's edit; True if a row changed."""
    existing = {t.language: t for t in db.exec(select(Translation).where(Translation.question_id == qid))}
    changed = False
    for lang, (value, version) in results.items():
        row = existing.get(lang)
        if row is not None and row.engine == "human":
            continue  # a moderator's fix wins over any machine result, late or not
        if row is not None and (row.text, row.engine, row.model_version) == (value, "argos", version):
            continue
        row = row or Translation(question_id=qid, language=lang, text=value, engine="argos")
        row.text, row.engine, row.model_version, row.updated_at = value, "argos", version, utcnow()
        db.add(row)
        changed = True
    return changed


def mark_untranslated(ctx: Context, qid: int, problem: Problem) -> bool:
    """Give up on machine translation; moderators can still read, edit and approve.
    False (and no event) if there was nothing to change."""
    stored = problem.stored()
    with ctx.transaction() as (db, outbox):
        q = db.exec(select(Question).where(Question.id == qid).with_for_update()).first()
        if q is None or q.translation_state == "done":
            return False
        if (q.translation_state, q.translation_error) == ("untranslated", stored):
            return False
        q.translation_state, q.translation_error, q.updated_at = "untranslated", stored, utcnow()
        db.add(q)
        db.flush()
        fanout.question_changed(db, outbox, q, old_status=q.status)
        return True


def pending_ids(ctx: Context) -> list[int]:
    with ctx.read() as db:
        ids = db.exec(select(Question.id).where(Question.translation_state == "pending").order_by(col(Question.id)))
        return [i for i in ids if i is not None]
