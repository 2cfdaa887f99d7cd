"""Per-process worker state: loaded once (models, detector, DB engine), used by every job."""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from qa_service.bus.redis_bus import SyncPublisher
from qa_service.db.engine import make_engine
from qa_service.services.context import OUTAGE_ERRORS, Context
from qa_service.settings import Settings, load_settings

from . import argos_env
from .inflight import Attempts, Leases, Retries

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    ctx: Context
    engine: Any
    name: str  # this worker process: host:pid:tag (its leases and heartbeat carry it)
    leases: Leases
    attempts: Attempts
    retries: Retries
    detectors: dict[tuple[str, ...], Any] = field(default_factory=dict)
    models_seen: tuple[Any, ...] = ()

    def detector_for(self, event: Any) -> Any:
        key = tuple(sorted(event.viewer_languages))
        if key not in self.detectors:
            from .detect import Detector

            self.detectors[key] = Detector(list(key), min_chars=self.settings.detect_min_chars)
        return self.detectors[key]

    def refresh_models(self) -> bool:
        """Pick up models imported or removed since the last job (`qa-service models
        import` beside a running worker): a few stat calls when nothing changed."""
        seen = _packages_signature()
        if seen == self.models_seen:
            return False
        try:
            self.engine.refresh()
        except (OSError, ValueError, KeyError) as exc:  # a package still being unpacked
            log.warning("translation models changed but could not be read yet (%s); trying again next job", exc)
            return False
        self.models_seen = seen
        log.info("translation models now installed: %s", sorted(self.engine.pairs))
        publish_status(self.redis, self.settings, self.engine)
        return True


def _packages_signature() -> tuple[Any, ...]:
    """Names and change times of the installed packages and their model files."""
    from argostranslate import settings as argos_settings

    out: list[Any] = []
    for directory in argos_settings.package_dirs:
        for entry in sorted(Path(directory).iterdir()) if Path(directory).is_dir() else []:
            for f in (entry, entry / "metadata.json", entry / "model" / "model.bin"):
                try:
                    st = f.stat()
                except FileNotFoundError:
                    continue
                out.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(out)


_runtime: Runtime | None = None


def argos_root(settings: Settings) -> Any:
    return settings.argos_dir or settings.data_dir / "argos"


def init(settings: Settings, redis_url: str) -> Runtime:
    """Load everything heavy once: call before the worker takes its first job.
    Touches neither Redis nor the database: a worker starts while they are away."""
    global _runtime
    if _runtime is not None:
        return _runtime
    argos_env.configure(argos_root(settings), intra_threads=settings.translate_threads)
    from .engine import ArgosEngine

    timeout = settings.redis_timeout_seconds
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=timeout, socket_timeout=timeout)
    ctx = Context(
        settings,
        make_engine(settings.effective_database_url, timeout=settings.db_timeout_seconds),
        SyncPublisher(client, settings.redis_prefix, settings.history_size),
    )
    engine = ArgosEngine(
        intra_threads=settings.translate_threads,
        max_batch_size=settings.translate_batch_size,
        compute_type=settings.translate_compute_type,
    )
    loaded = engine.preload(settings.preload_pairs)
    log.info("translation models installed: %s; preloaded: %s", sorted(engine.pairs), loaded)
    name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    prefix = settings.redis_prefix
    # Leases outlive a job by its timeout at most: a job wedged past it lets its questions go.
    leases = Leases(client, prefix, name, settings.worker_lease_seconds, settings.translate_job_timeout + 5)
    _runtime = Runtime(settings, client, ctx, engine, name, leases, Attempts(client, prefix), Retries(client, prefix))
    _runtime.models_seen = _packages_signature()
    try:
        _preload_detector(_runtime)
    except OUTAGE_ERRORS as exc:
        log.warning("database unreachable at start (%s); the language detector loads with the first job", exc)
    return _runtime


def _preload_detector(rt: Runtime) -> None:
    """Build the language detector for the loaded event now, not on the first question."""
    from qa_service.services.questions import event_by_slug

    with rt.ctx.read() as db:
        event = event_by_slug(db, rt.settings.event)
    if event is not None:
        rt.detector_for(event)


STATUS_KEY = "{prefix}:translation:status"


def publish_status(client: redis.Redis, settings: Settings, engine: Any) -> None:
    """Tell hubs (and so the console and host display) what the workers translate with."""
    status = {
        "pairs": sorted(f"{a}-{b}" for a, b in engine.pairs),
        "test_model": engine.is_test_model(),
        "hint": "qa-service models install CODE… (or models import PATH offline)",
    }
    client.set(STATUS_KEY.format(prefix=settings.redis_prefix), json.dumps(status))


def get() -> Runtime:
    """The process's runtime; built from the environment if a plain `rq worker` runs our jobs."""
    if _runtime is None:
        settings = load_settings()
        if not settings.redis_url:
            raise RuntimeError("QA_REDIS_URL must be set for a translation worker")
        return init(settings, settings.redis_url)
    return _runtime
