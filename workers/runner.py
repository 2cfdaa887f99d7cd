"""`qa-service worker`: load models once, then take jobs, whatever Redis and the
database do meanwhile.

Two loops, both supervised. The main thread runs an RQ SimpleWorker (jobs run in
this process, so the models loaded once stay loaded); RQ ends its work loop on
most Redis errors, so a fresh worker is built after a bounded backoff, for as
long as the process is not told to stop. A background thread beats (the
heartbeat hubs read), renews the leases of the questions in flight, releases
due retries and sweeps: every pending question that is not waiting in the
queue, not leased by a live worker and not waiting for a retry is queued again
(a worker killed mid-job, a failed enqueue, a Redis restarted without its data).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from rq import Queue, SimpleWorker

from qa_service.services.context import OUTAGE_ERRORS
from qa_service.settings import Settings

from . import heartbeat, metrics, runtime
from .jobs import enqueue_many, question_of
from .translate import pending_ids

log = logging.getLogger(__name__)
TICK = 0.5  # seconds between looks at due retries
MAX_BACKOFF = 30.0


def sweep(rt: runtime.Runtime, queue: Queue) -> int:
    """Queue again every pending question nobody works on; returns how many."""
    pending = pending_ids(rt.ctx)
    if not pending:
        return 0
    waiting = {question_of(job_id) for job_id in queue.get_job_ids()}
    busy = waiting | rt.retries.waiting() | rt.leases.leased(pending)
    todo = [qid for qid in pending if qid not in busy]
    enqueue_many(queue, todo, timeout=rt.settings.translate_job_timeout)
    return len(todo)


@dataclass
class Step:
    """One periodic duty of the background thread; a failure is logged at WARNING
    once per outage and retried with backoff, never ends the thread."""

    name: str
    every: float
    run: Callable[[], None]
    on_recovery: Callable[[], None] | None = None
    next_at: float = 0.0
    failures: int = 0

    def maybe_run(self, now: float) -> None:
        if now < self.next_at:
            return
        try:
            self.run()
        except Exception as exc:  # supervised: any failure is retried (OUTAGE_ERRORS most of all)
            self.failures += 1
            if self.failures == 1:
                unexpected = not isinstance(exc, OUTAGE_ERRORS)
                log.warning("worker %s failed (%r); retrying with backoff", self.name, exc, exc_info=unexpected)
            self.next_at = now + min(self.every, TICK * 2**self.failures, MAX_BACKOFF)
            return
        self.next_at = now + self.every
        if self.failures:
            log.warning("worker %s works again after %d failed tries", self.name, self.failures)
            self.failures = 0
            if self.on_recovery:
                self.on_recovery()


class Background:
    def __init__(self, rt: runtime.Runtime, queue: Queue) -> None:
        self.rt = rt
        self.queue = queue
        self.stopped = threading.Event()
        s = rt.settings
        self.sweep_now = False
        self.server: str | None = None  # the Redis server's run id
        self.steps = [
            # Redis back: sweep at once (a Redis restarted without its data lost the queue).
            Step("heartbeat", heartbeat.interval(s), self.beat, on_recovery=self.request_sweep),
            Step("retry release", TICK, self.release_due),
            Step("sweep", s.worker_sweep_seconds, self.sweep),
            # Channels whose events could not be published get their channel.stale marker.
            Step("bus repair", TICK, self.repair_bus),
        ]
        self.thread = threading.Thread(target=self._loop, name="worker-background", daemon=True)

    def beat(self) -> None:
        rt = self.rt
        heartbeat.beat(rt.redis, rt.settings.redis_prefix, rt.name)
        server = _run_id(rt.redis)
        if server != self.server:  # restarted, perhaps too quickly for a beat to fail
            if self.server is not None:
                self.request_sweep()
                rt.ctx.publisher.ensure_epoch()  # its counters may be older than numbers handed out
            self.server = server
        rt.leases.renew()
        # Again each beat: a Redis restarted without its data forgot it.
        runtime.publish_status(rt.redis, rt.settings, rt.engine)

    def release_due(self) -> None:
        due = self.rt.retries.take_due()
        enqueue_many(self.queue, due, timeout=self.rt.settings.translate_job_timeout, alone=True)

    def repair_bus(self) -> None:
        if self.rt.ctx.publisher.stale_channels:
            self.rt.ctx.publisher.flush_stale()

    def request_sweep(self) -> None:
        self.sweep_now = True
        next(step for step in self.steps if step.name == "sweep").next_at = 0.0

    def sweep(self) -> None:
        rt = self.rt
        # One sweep per period across all workers (the lock lapses before the next),
        # unless this worker just saw Redis come back.
        lock = rt.leases.keys.sweep_lock
        if self.sweep_now or rt.redis.set(lock, rt.name, nx=True, px=int(rt.settings.worker_sweep_seconds * 800)):
            count = sweep(rt, self.queue)
            self.sweep_now = False
            if count:
                log.info("re-queued %d question(s) still waiting for translation", count)

    def run_once(self) -> None:
        now = time.monotonic()
        for step in self.steps:
            step.maybe_run(now)

    def _loop(self) -> None:
        while not self.stopped.wait(TICK):
            self.run_once()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(10)
        try:
            heartbeat.stop(self.rt.redis, self.rt.settings.redis_prefix, self.rt.name)
        except OUTAGE_ERRORS as exc:
            log.warning("could not remove this worker's heartbeat (%s); it ages out", exc)


def _run_id(client: redis.Redis) -> str | None:
    """Changes whenever the Redis server restarts (None where INFO is not allowed)."""
    try:
        info: Any = client.info("server")
    except redis.ResponseError:
        return None
    return str(info.get("run_id"))


class TranslationWorker(SimpleWorker):
    """A SimpleWorker that tells the supervisor when it was asked to stop, and
    waits for Redis with a bounded backoff."""

    max_connection_wait_time = 5.0
    stop_event: threading.Event

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_event.set()
        super().request_stop(signum, frame)


def supervise(settings: Settings, stop: threading.Event, *, burst: bool) -> None:
    """Run RQ work loops until asked to stop, a fresh one after each that ended on
    an error (Redis away, the database away during RQ's own bookkeeping, …)."""
    timeout = settings.redis_timeout_seconds
    delay = 1.0
    while not stop.is_set():
        started = time.monotonic()
        # RQ's own connection: it raises the socket timeout for its blocking pops.
        connection = redis.Redis.from_url(settings.redis_url or "", socket_connect_timeout=timeout)
        worker: TranslationWorker | None = None
        try:
            queues = [
                Queue(name, connection=connection) for name in (settings.queue_name, settings.audience_queue_name)
            ]
            worker = TranslationWorker(queues, connection=connection)  # in this order: moderation first
            worker.stop_event = stop
            worker.work(burst=burst, with_scheduler=False, logging_level="INFO")
        except Exception as exc:  # supervised: whatever ended it, a fresh worker follows
            log.warning("worker loop failed (%r)", exc)
        finally:
            _stop_on_signals(stop)  # RQ's handlers point at the worker that just ended
            # A teardown that failed on Redis left RQ's Pub/Sub thread running: end it.
            pubsub_thread = getattr(worker, "pubsub_thread", None)
            if pubsub_thread is not None and pubsub_thread.is_alive():
                pubsub_thread.stop()
            connection.close()
        if burst or stop.is_set():
            return
        if time.monotonic() - started > 60:
            delay = 1.0
        log.warning("worker loop ended (Redis or the database away?); a fresh one starts in %.0f s", delay)
        stop.wait(delay)
        delay = min(delay * 2, MAX_BACKOFF)


def _stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


def run(settings: Settings, *, burst: bool = False) -> int:
    if not settings.redis_url:
        raise SystemExit("QA_REDIS_URL must be set for a worker (qa-service demo sets it for its own)")
    metrics_server = metrics.serve(settings)  # before loading models: a taken port fails at once
    rt = runtime.init(settings, settings.redis_url)
    background = Background(rt, Queue(settings.queue_name, connection=rt.redis))
    background.run_once()  # beat, re-queue what was missed, before the first job
    stop = threading.Event()
    _stop_on_signals(stop)
    if not burst:
        background.start()
    try:
        supervise(settings, stop, burst=burst)
    finally:
        background.stop()
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()
    return 0
