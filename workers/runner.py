"""`qa-service worker`: load models once, sweep up missed work, then take jobs."""

from __future__ import annotations

import logging

import redis
from rq import Queue, SimpleWorker
from rq.registry import StartedJobRegistry

from qa_service.settings import Settings

from . import runtime
from .jobs import enqueue
from .translate import pending_ids

log = logging.getLogger(__name__)


def sweep(settings: Settings, client: redis.Redis, queue: Queue) -> int:
    """Re-queue questions whose translations are missing (a worker killed
    mid-job, Redis restarted, an enqueue that failed after a commit)."""
    rt = runtime.get()
    StartedJobRegistry(queue=queue).cleanup()  # abandoned jobs: retried or failed
    waiting = {job.args[0] for job in queue.get_jobs() if job.args}
    count = 0
    for qid in pending_ids(rt.ctx):
        if qid in waiting:
            continue
        # One re-queue per question per minute, however many workers start at once.
        if client.set(f"{settings.redis_prefix}:tsweep:{qid}", 1, nx=True, ex=60):
            enqueue(queue, qid, timeout=settings.translate_job_timeout)
            count += 1
    return count


def run(settings: Settings, *, burst: bool = False) -> int:
    if not settings.redis_url:
        raise SystemExit("QA_REDIS_URL must be set for a worker (qa-service demo sets it for its own)")
    rt = runtime.init(settings, settings.redis_url)
    queue = Queue(settings.queue_name, connection=rt.redis)
    log.info("re-queued %d question(s) still waiting for translation", sweep(settings, rt.redis, queue))
    # SimpleWorker runs jobs in this process: the models loaded above stay loaded
    # (the default Worker forks per job and would load them again every time).
    worker = SimpleWorker([queue], connection=rt.redis)
    worker.work(burst=burst, with_scheduler=not burst, logging_level="INFO")
    return 0
