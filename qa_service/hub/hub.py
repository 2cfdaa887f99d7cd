"""The hub of one process: services, bus, open connections, the schedule clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio.to_thread
import redis.asyncio as aioredis

from ..bus.redis_bus import AsyncBus
from ..domain.errors import DomainError
from ..security import Signer
from ..services import questions, schedule
from ..services.context import Context
from ..settings import Settings
from .connection import Connection

log = logging.getLogger(__name__)
T = TypeVar("T")


class Hub:
    def __init__(self, settings: Settings, ctx: Context, aredis: aioredis.Redis) -> None:
        self.settings = settings
        self.ctx = ctx
        self.redis = aredis
        self.bus = AsyncBus(aredis, settings.redis_prefix)
        self.signer = Signer(settings.secret_key)
        self.connections: set[Connection] = set()
        self._event_id: int | None = None
        self._clock: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.bus.start()
        self.bus.on_connection_lost(self._resync_all)
        self._clock = asyncio.create_task(self._clock_loop(), name="schedule-clock")

    async def stop(self) -> None:
        if self._clock:
            self._clock.cancel()
            try:
                await self._clock
            except asyncio.CancelledError:
                pass
        for conn in list(self.connections):
            conn.close(1001, "server shutting down")
        await self.bus.close()

    def _resync_all(self) -> None:
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

    async def _clock_loop(self) -> None:
        while True:
            try:
                event_id = await self.event_id()
                now = datetime.now(UTC).replace(tzinfo=None)
                changed = await self.run(schedule.tick, self.ctx, event_id, now)
                if changed:
                    log.info("schedule clock moved segments %s", changed)
            except DomainError:
                pass  # no event yet
            except Exception:  # keep the clock alive whatever one tick does; the error is logged
                log.exception("schedule tick failed")
            await asyncio.sleep(self.settings.schedule_tick_seconds)

    async def rate_limited(self, key: str, limit: int, window: int = 60) -> bool:
        """Fixed-window counter in Redis, shared by every hub process."""
        bucket = int(datetime.now(UTC).timestamp()) // window
        full = f"{self.settings.redis_prefix}:rl:{key}:{bucket}"
        pipe = self.redis.pipeline()
        pipe.incr(full)
        pipe.expire(full, window * 2)
        count, _ = await pipe.execute()
        return int(count) > limit
