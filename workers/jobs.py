"""RQ job functions, importable by dotted path (`workers.jobs.translate_question`).

One job is one attempt at each question of its batch. Failures are classified
once, here: a route without a model is final at once (translate.py); the
database or Redis away does not count against a question (it stays pending and
the sweep queues it again); a batch that fails otherwise is split, each question
tried again alone, so one question that breaks the engine harms no other; a
question too long for the model (alone) is final at once (``too_long``: another
try fails the same way); a question that fails alone otherwise (an engine error,
a timeout) or whose worker was killed mid-job counts one attempt, is retried after
1, 3, 10 s, and after ``translate_max_attempts`` attempts ends 'untranslated'
(``engine_failed``). The engine's own words go to this log, never to the database.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from rq import Queue
from rq.job import Job
from rq.timeouts import JobTimeoutException

from qa_service.domain.translation_problem import ENGINE_FAILED, TOO_LONG, Problem
from qa_service.services.context import OUTAGE_ERRORS

from . import runtime
from .inflight import STOPPED_MID_JOB, Leases
from .translate import mark_untranslated, translate_questions

log = logging.getLogger(__name__)
JOB = "workers.jobs.translate_question"
_JOB_ID = re.compile(r"t[qr](\d+)-[0-9a-f]+")  # tq: may be batched; tr: a retry, alone
# What CTranslate2 says when a text needs more positions than the model has
# ("No position encodings are defined for positions >= 64, but got position 500").
_TOO_LONG = re.compile(r"position encodings are defined for positions|maximum (sequence|input) length", re.I)


def classify(exc: BaseException) -> str:
    """The problem code of an engine failure: too_long (permanent) or engine_failed."""
    return TOO_LONG if _TOO_LONG.search(str(exc)) else ENGINE_FAILED


def _job(question_id: int, timeout: int, alone: bool) -> Any:
    return Queue.prepare_data(
        JOB,
        args=(question_id,),
        kwargs={"alone": alone},
        job_id=f"{'tr' if alone else 'tq'}{question_id}-{uuid.uuid4().hex[:12]}",
        timeout=timeout,
        result_ttl=60,
        failure_ttl=24 * 3600,
    )


def enqueue(queue: Queue, question_id: int, *, timeout: int = 60, alone: bool = False) -> Job:
    """Queue one question for translation (called by the hub after the commit).
    The job id names the question, so a sweep can read the queue without fetching jobs."""
    return enqueue_many(queue, [question_id], timeout=timeout, alone=alone)[0]


def enqueue_many(queue: Queue, ids: list[int], *, timeout: int = 60, alone: bool = False) -> list[Job]:
    """Queue several at once (one round trip), so the first worker to start on them
    can claim the others into one batch."""
    return queue.enqueue_many([_job(qid, timeout, alone) for qid in ids]) if ids else []


def question_of(job_id: str | bytes) -> int | None:
    """The question a translation job is for, from its id (None: not one of ours)."""
    match = _JOB_ID.fullmatch(job_id.decode() if isinstance(job_id, bytes) else job_id)
    return int(match.group(1)) if match else None


def claim_waiting(queue: Queue, limit: int, ids: list[int], leases: Leases) -> None:
    """Take other waiting translation jobs off the queue so one CTranslate2 call
    serves them all, adding their questions to ``ids`` (whose leases the caller
    gives back, whatever happens here). Each question is leased before its job
    leaves the queue, so a sweep never sees it unaccounted for; LREM decides which
    worker got the job. A job whose question is in flight already is dropped."""
    for job_id in queue.get_job_ids(0, limit * 2):
        if len(ids) > limit:
            break
        qid = question_of(job_id)
        if qid is None or not job_id.startswith("tq"):
            continue
        new = qid not in ids and bool(leases.acquire([qid]))
        if new:
            ids.append(qid)
        if not queue.remove(job_id):  # dequeued by another worker meanwhile
            if new:
                ids.remove(qid)
                leases.release([qid])
            continue
        queue.connection.delete(Job.key_for(job_id))


def translate_question(question_id: int, alone: bool = False) -> dict[str, Any]:
    rt = runtime.get()
    s = rt.settings
    rt.refresh_models()
    from rq import get_current_job

    if not rt.leases.acquire([question_id]):
        return {"skipped": [question_id]}  # another worker is translating it right now
    job = get_current_job()
    queue = Queue(job.origin, connection=rt.redis) if job is not None else None
    ids = [question_id]
    try:
        if queue is not None and not alone:
            claim_waiting(queue, s.translate_batch_size - 1, ids, rt.leases)
        out = attempt(rt, ids)
    finally:
        try:
            rt.leases.release(ids)
        except OUTAGE_ERRORS as exc:
            log.warning("leases of %d question(s) given back once Redis is back (%s)", len(ids), exc)
    if queue is not None:
        # Re-translated from another language meanwhile: the job that queued may
        # have found the question leased by this one and let it be.
        for qid in out.get("stale", []):
            enqueue(queue, qid, timeout=s.translate_job_timeout)
    return out


def attempt(rt: runtime.Runtime, ids: list[int]) -> dict[str, Any]:
    """One attempt at each of ``ids`` (leased by this worker)."""
    s = rt.settings
    counts = rt.attempts.begin(ids)
    ready = []
    for qid, (n, last_error) in counts.items():
        if n > s.translate_max_attempts:  # the earlier attempts never ended: the worker died in them
            _give_up(rt, qid, n - 1, last_error)
        else:
            ready.append(qid)
    if not ready:
        return {"translated": [], "batch": len(ids)}
    try:
        result = translate_questions(rt.ctx, ready, rt.engine, rt.detector_for, rt.redis)
    except OUTAGE_ERRORS as exc:
        log.warning("translation of %d question(s) waits: database or Redis away (%s)", len(ready), exc)
        try:
            rt.attempts.refund(ready)  # an outage costs no attempt...
        except OUTAGE_ERRORS as again:  # ...unless Redis itself is what is away: then it costs one
            log.warning("could not refund the attempt (%r)", again)
        return {"waiting": ready}  # still pending, soon not leased: the sweep queues them again
    except Exception as exc:  # an engine error or a timeout
        timed_out = isinstance(exc, JobTimeoutException)
        code = ENGINE_FAILED if timed_out else classify(exc)
        log.warning(
            "translation of %d question(s) %s (%s): %r",
            len(ready),
            "timed out" if timed_out else "failed",
            code,
            exc,
            exc_info=not timed_out,
        )
        if len(ready) > 1:  # whose fault? each is tried again alone; this try counts for none
            rt.attempts.refund(ready)
            rt.retries.schedule(ready, 1)
        elif code == TOO_LONG:  # another try would fail the same way
            _give_up(rt, ready[0], counts[ready[0]][0], code)
        else:
            _retry_or_give_up(rt, ready[0], counts[ready[0]][0], code)
        return {"failed": ready, "error": code}
    rt.attempts.clear(ready)  # each is done, untranslated, re-translated meanwhile or gone
    out: dict[str, Any] = {"translated": result.done, "batch": len(ids)}
    if result.untranslated:
        out["untranslated"] = result.untranslated
    if result.stale:
        out["stale"] = result.stale
    return out


def _retry_or_give_up(rt: runtime.Runtime, qid: int, attempts: int, reason: str) -> None:
    if attempts >= rt.settings.translate_max_attempts:
        _give_up(rt, qid, attempts, reason)
    else:
        rt.attempts.failed([qid], reason)
        rt.retries.schedule([qid], attempts)


def _give_up(rt: runtime.Runtime, qid: int, attempts: int, reason: str | None) -> None:
    """After the last attempt (or a permanent failure): untranslated, still approvable.
    ``reason``: the last attempt's problem code (or, for a worker that died in it,
    what the attempts record says: engine_failed)."""
    problem = Problem(TOO_LONG if reason == TOO_LONG else ENGINE_FAILED)
    log.warning(
        "question %s untranslated (%s) after %d attempt(s): %s", qid, problem.code, attempts, reason or STOPPED_MID_JOB
    )
    try:
        mark_untranslated(rt.ctx, qid, problem)
    except OUTAGE_ERRORS as exc:  # still pending: the next attempt gives up again
        log.warning("could not mark question %s untranslated (%s)", qid, exc)
        return
    rt.attempts.clear([qid])
