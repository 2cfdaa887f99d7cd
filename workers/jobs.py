"""RQ job functions, importable by dotted path (`workers.jobs.translate_question`)."""

from __future__ import annotations

import logging
import time
from typing import Any

from rq import Callback, Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job

from . import runtime
from .translate import MissingModels, mark_untranslated, translate_questions

log = logging.getLogger(__name__)
JOB = "workers.jobs.translate_question"
RETRY_INTERVALS = [1, 3, 10]


def enqueue(queue: Queue, question_id: int, *, timeout: int = 60) -> Job:
    """Queue one question for translation (called by the hub after the commit)."""
    return queue.enqueue(
        JOB,
        question_id,
        job_timeout=timeout,
        retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
        on_failure=Callback("workers.jobs.on_failure"),
        result_ttl=60,
        failure_ttl=24 * 3600,
    )


def claim_waiting(queue: Queue, limit: int, exclude: int) -> list[int]:
    """Take other waiting translation jobs off the queue so one CTranslate2 call
    serves them all. LREM is atomic: a job is claimed by one worker only. If the
    worker dies after claiming, its start-up sweep re-queues what is still untranslated."""
    claimed: list[int] = []
    for job_id in queue.get_job_ids(0, limit * 2):
        if len(claimed) >= limit:
            break
        try:
            job = Job.fetch(job_id, connection=queue.connection)
        except NoSuchJobError:  # taken and finished by another worker meanwhile
            continue
        if job.func_name != JOB or not job.args:
            continue
        if queue.remove(job_id):
            qid = int(job.args[0])
            if qid != exclude and qid not in claimed:
                claimed.append(qid)
            job.delete(remove_from_queue=False)
    return claimed


def translate_question(question_id: int) -> dict[str, Any]:
    rt = runtime.get()
    s = rt.settings
    from rq import get_current_job

    job = get_current_job()
    queue = Queue(job.origin, connection=rt.redis) if job else None
    claimed = claim_waiting(queue, s.translate_batch_size - 1, question_id) if queue else []
    ids = [question_id, *claimed]
    if s.worker_job_delay:
        time.sleep(s.worker_job_delay)  # fault injection for tests: a window to kill the worker in
    try:
        result = translate_questions(rt.ctx, ids, rt.engine, rt.detector_for, rt.redis)
    except Exception:
        # Claimed questions get their own job (and retries); this one is retried by RQ.
        if queue:
            for qid in claimed:
                enqueue(queue, qid, timeout=s.translate_job_timeout)
        raise
    if queue:
        for qid in result.missing:
            if qid != question_id:
                enqueue(queue, qid, timeout=s.translate_job_timeout)
    if question_id in result.missing:
        raise MissingModels("; ".join(result.missing[question_id]))
    return {"translated": result.done, "batch": len(ids)}


def on_failure(job: Job, connection: Any, exc_type: type, exc_value: BaseException, tb: Any) -> None:
    """After the last retry: the question is 'untranslated: reason', still approvable."""
    if job.retries_left:
        return
    reason = str(exc_value) or exc_type.__name__
    if exc_type.__name__ == "JobTimeoutException":
        reason = "translation timed out"
    elif exc_type.__name__ == "AbandonedJobError":
        reason = "the worker stopped mid-job"
    mark_untranslated(runtime.get().ctx, int(job.args[0]), reason)
