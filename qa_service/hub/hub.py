"""The hub of one process: services, bus, open connections, and its background
tasks (schedule clock, access re-checks, bus repair), each supervised: restarted
after any exception, logged at WARNING, visible in /readyz."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio.to_thread
import redis.asyncio as aioredis

from ..bus.redis_bus import AsyncBus
from ..domain.errors import DomainError
from ..keys import signing_key
from ..security import Signer
from ..services import questions, schedule
from ..services.context import OUTAGE_ERRORS, Context
from ..settings import Settings
from . import protocol
from .connection import Connection

log = logging.getLogger(__name__)
T = TypeVar("T")


class Hub:
    def __init__(self, settings: Settings, ctx: Context, aredis: aioredis.Redis) -> None:
        self.settings = settings
        self.ctx = ctx
        self.redis = aredis
        self.bus = AsyncBus(aredis, settings.redis_prefix, heartbeat=settings.bus_heartbeat_seconds)
        self.signer = Signer(signing_key(settings))
        self.connections: set[Connection] = set()
        self._event_id: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.task_failures: dict[str, int] = {}
        self._local_limits: dict[str, deque[float]] = {}

    async def start(self) -> None:
        await self.bus.start()
        self.bus.on_connection_lost(self._resync_all)
        self._supervise("schedule-clock", self._clock_tick, self.settings.schedule_tick_seconds)
        self._supervise("access-recheck", self._recheck_access, self.settings.access_recheck_seconds)
        self._supervise("bus-repair", self._repair_bus, 1.0)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        for conn in list(self.connections):
            conn.close(1001, "server shutting down")
        await self.bus.close()

    def _supervise(self, name: str, step: Callable[[], Awaitable[None]], every: float) -> None:
        """Run ``step`` every ``every`` seconds for ever; an exception is logged and counted, never fatal."""

        async def loop() -> None:
            while True:
                try:
                    await step()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.task_failures[name] = self.task_failures.get(name, 0) + 1
                    log.warning("%s failed (%r); it runs again in %.1fs", name, exc, every, exc_info=True)
                await asyncio.sleep(every)

        self._tasks.append(asyncio.create_task(loop(), name=name))

    @property
    def tasks_alive(self) -> dict[str, bool]:
        return {t.get_name(): not t.done() for t in self._tasks}

    async def _resync_all(self) -> None:
        # This process's stale markers first: their numbers then fall below the snapshot
        # heads and are skipped, instead of asking every socket for a second snapshot.
        try:
            await self._repair_bus()
        except OUTAGE_ERRORS as exc:
            log.warning("stale channels not announced yet (%r); the bus-repair task retries", exc)
        for conn in list(self.connections):
            conn.request_resync("bus_reconnected")

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a synchronous service call in a worker thread."""
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    async def event_id(self) -> int:
        if self._event_id is None:

            def find() -> int | None:
                with self.ctx.read() as db:
                    ev = questions.event_by_slug(db, self.settings.event)
                    return ev.id if ev else None

            self._event_id = await self.run(find)
            if self._event_id is None:
                raise DomainError("event.not_loaded", "no event is loaded yet: run 'qa-service event load FILE'")
        return self._event_id

    async def _clock_tick(self) -> None:
        try:
            event_id = await self.event_id()
        except DomainError:
            return  # no event yet
        now = datetime.now(UTC).replace(tzinfo=None)
        changed = await self.run(schedule.tick, self.ctx, event_id, now)
        if changed:
            log.info("schedule clock moved segments %s", changed)

    async def _recheck_access(self) -> None:
        """A revoked host link or a disabled or deleted staff account loses its open sockets."""
        for conn in [c for c in self.connections if c.still_allowed is not None and not c.closing]:
            check = conn.still_allowed
            assert check is not None
            if not await self.run(check):
                log.warning("access withdrawn: closing a staff socket with 4401")
                conn.close(protocol.CLOSE_UNAUTHORIZED, "your access was withdrawn: log in or open a new link")

    async def _repair_bus(self) -> None:
        """Announce channels whose events could not be published (see bus/redis_bus.py)."""
        if self.ctx.publisher.stale_channels:
            await self.run(self.ctx.publisher.flush_stale)

    async def rate_limited(self, key: str, limit: int, window: int = 60) -> bool:
        """Fixed-window counter in Redis, shared by every hub process. While Redis
        is away, a sliding window in this process stands in: asking must not depend
        on Redis (the database is the truth)."""
        bucket = int(datetime.now(UTC).timestamp()) // window
        full = f"{self.settings.redis_prefix}:rl:{key}:{bucket}"
        try:
            pipe = self.redis.pipeline()
            pipe.incr(full)
            pipe.expire(full, window * 2)
            count, _ = await asyncio.wait_for(pipe.execute(), timeout=1.0)
            return int(count) > limit
        except OUTAGE_ERRORS as exc:  # TimeoutError is an OSError
            log.warning("rate limit in Redis unavailable (%r); using this process's limiter", exc)
            return self._local_rate_limited(key, limit, window)

    def _local_rate_limited(self, key: str, limit: int, window: int) -> bool:
        now = time.monotonic()
        hits = self._local_limits.setdefault(key, deque())
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= limit:
            return True
        hits.append(now)
        if len(self._local_limits) > 100_000:  # bounded memory under a flood of new keys
            self._local_limits.clear()
        return False
