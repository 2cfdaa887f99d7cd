"""Per-process worker state: loaded once (models, detector, DB engine), used by every job."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import redis

from qa_service.bus.redis_bus import SyncPublisher
from qa_service.db.engine import make_engine
from qa_service.services.context import Context
from qa_service.settings import Settings, load_settings

from . import argos_env

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    ctx: Context
    engine: Any
    detectors: dict[tuple[str, ...], Any] = field(default_factory=dict)

    def detector_for(self, event: Any) -> Any:
        key = tuple(sorted(event.viewer_languages))
        if key not in self.detectors:
            from .detect import Detector

            self.detectors[key] = Detector(list(key), min_chars=self.settings.detect_min_chars)
        return self.detectors[key]


_runtime: Runtime | None = None


def argos_root(settings: Settings) -> Any:
    return settings.argos_dir or settings.data_dir / "argos"


def init(settings: Settings, redis_url: str) -> Runtime:
    """Load everything heavy once: call before the worker takes its first job."""
    global _runtime
    if _runtime is not None:
        return _runtime
    argos_env.configure(argos_root(settings), intra_threads=settings.translate_threads)
    from .engine import ArgosEngine

    client = redis.Redis.from_url(redis_url)
    ctx = Context(
        settings,
        make_engine(settings.effective_database_url),
        SyncPublisher(client, settings.redis_prefix, settings.history_size),
    )
    engine = ArgosEngine(
        intra_threads=settings.translate_threads,
        max_batch_size=settings.translate_batch_size,
        compute_type=settings.translate_compute_type,
    )
    loaded = engine.preload(settings.preload_pairs)
    log.info("translation models installed: %s; preloaded: %s", sorted(engine.pairs), loaded)
    publish_status(client, settings, engine)
    _runtime = Runtime(settings, client, ctx, engine)
    _preload_detector(_runtime)
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
