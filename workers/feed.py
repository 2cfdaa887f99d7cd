"""The public feed in the languages its viewers read (RQ job `workers.feed.translate_feed`).

Queued by the hub after a question enters the feed (with its id) and when a
language gets its first reader on a hub (with that language). Translates the feed's
questions into the languages connected viewers read now (services.feed.active_languages,
at most ``QA_FEED_LANGUAGES``), each through English where no direct model exists,
skipping what is stored already (the cache: a translation row per question and
language, a moderator's edit included) and what no model can reach (the viewer
then reads the original, its language named). The texts go out on each language's
feed channel. Best effort: a failure here leaves the original showing, never a
question unmoderated, so nothing is retried but by the next trigger.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from rq import Queue
from sqlmodel import col, select

from qa_service.db.models import Question, Translation, utcnow
from qa_service.services import feed
from qa_service.services.context import Context
from qa_service.services.fanout import feed_texts, in_feed

from . import runtime
from .planner import Plan, path
from .translate import Work, _translate

log = logging.getLogger(__name__)
JOB = "workers.feed.translate_feed"


def enqueue(
    queue: Queue, event_id: int, question_ids: list[int] | None = None, languages: list[str] | None = None
) -> None:
    """Queue the feed's translation: of some questions (into every language read now),
    or of the whole feed into some languages (a language just got its first reader)."""
    queue.enqueue(
        JOB,
        args=(event_id,),
        kwargs={"question_ids": question_ids, "languages": languages},
        job_id=f"tf{event_id}-{uuid.uuid4().hex[:12]}",
        result_ttl=60,
        failure_ttl=3600,
    )


def translate_feed(
    event_id: int, question_ids: list[int] | None = None, languages: list[str] | None = None
) -> dict[str, Any]:
    rt = runtime.get()
    rt.refresh_models()
    read_now = feed.active_languages(rt.redis, rt.settings.redis_prefix, event_id, rt.settings.feed_languages)
    wanted = [lang for lang in read_now if languages is None or lang in languages]
    return translate(rt.ctx, rt.engine, rt.redis, event_id, wanted, question_ids)


def translate(
    ctx: Context, engine: Any, cache: Any, event_id: int, languages: list[str], question_ids: list[int] | None
) -> dict[str, Any]:
    """Translate the feed's questions (``question_ids``, or all of it) into ``languages``;
    returns what was done. One engine call per route, as translate.py does."""
    if not languages:
        return {"translated": 0, "languages": []}
    work: dict[int, Work] = {}
    unreachable: set[str] = set()
    with ctx.read() as db:
        qs = feed.feed_questions(db, event_id, question_ids)
        have: dict[int, set[str]] = {q.id: set() for q in qs if q.id is not None}
        if have:
            rows = db.exec(
                select(Translation.question_id, Translation.language).where(
                    col(Translation.question_id).in_(list(have)), col(Translation.language).in_(languages)
                )
            )
            for qid, lang in rows:
                have[qid].add(lang)
        for q in qs:
            if q.id is None:
                continue
            targets: dict[str, list[str]] = {}
            for lang in languages:
                if lang == q.language or lang in have[q.id]:
                    continue
                route = path(q.language, lang, engine.pairs)
                if route is None:
                    unreachable.add(f"{q.language}→{lang}")
                else:
                    targets[lang] = route
            if targets:
                work[q.id] = Work(q.text, q.language, Plan(targets=targets), None)
    if unreachable:
        log.info("feed: no model for %s; those viewers read the original", ", ".join(sorted(unreachable)))
    if not work:
        return {"translated": 0, "languages": languages}
    results = _translate(ctx, work, engine, cache)
    stored = 0
    with ctx.transaction() as (db, outbox):
        for qid, w in work.items():
            found = db.exec(select(Question).where(Question.id == qid).with_for_update()).first()
            if found is None or (found.text, found.language) != (w.text, w.language):
                continue  # re-translated or gone meanwhile
            if not in_feed(found.status, found.feed_hidden):
                continue  # left the feed meanwhile
            existing = set(db.exec(select(Translation.language).where(Translation.question_id == qid)))
            new = [
                Translation(question_id=qid, language=lang, text=text, engine="argos", model_version=version)
                for lang, (text, version) in results.get(qid, {}).items()
                if lang not in existing  # a moderator's edit or the question's own job got there first
            ]
            for row in new:
                row.updated_at = utcnow()
                db.add(row)
            db.flush()
            feed_texts(outbox, found, new)
            stored += len(new)
    return {"translated": stored, "languages": languages}
