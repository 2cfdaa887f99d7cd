"""The hub of one process: services, bus, open connections, rate limits, the login
pool, and its background tasks (schedule clock, access re-checks, bus repair, the
retention purge), each supervised: restarted after any exception, logged at
WARNING, visible in /readyz."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio.to_thread
import redis.asyncio as aioredis

from ..bus import channels
from ..bus.redis_bus import AsyncBus
from ..domain.errors import DomainError
from ..keys import signing_key
from ..metrics import HubMetrics
from ..ratelimit import Limiter, RateLimited
from ..security import Signer
from ..services import feed, privacy, questions, schedule, snapshots
from ..services.context import OUTAGE_ERRORS, Context
from ..settings import Settings
from . import protocol
from .connection import Connection
from .ingest import AskGroups, VoteGroups

log = logging.getLogger(__name__)
T = TypeVar("T")
PURGE_EVERY = 3600.0  # seconds between two runs of the retention purge (the first runs at start)
SHUTDOWN_WAIT_SECONDS = 10.0  # for service calls still running in threads when the hub stops
SCHEDULE_CACHE_SECONDS = 5.0  # a programme change that was not announced (event reload) shows within this
LOGINS_WAITING_PER_SLOT = 32  # beyond this many waiting logins per argon2 slot, new ones are told to come back
LANGUAGE_REPORT_EVERY = 5.0  # seconds between two reports of this hub's feed languages (feed.report_languages)
FEED_TEXT_CACHE = 64  # feed snapshots kept (by language and channel heads)


def resync_delays(count: int, per_second: int) -> list[float]:
    """When each of ``count`` sockets resyncs after the bus came back: ``per_second``
    at most, the first at once, each later one with a random jitter (other hubs
    resync the same moment; their snapshots must not land on the database together)."""
    return [0.0 if i == 0 else (i + random.random()) / per_second for i in range(count)]


class Hub:
    def __init__(self, settings: Settings, ctx: Context, aredis: aioredis.Redis) -> None:
        self.settings = settings
        self.ctx = ctx
        self.redis = aredis
        self.bus = AsyncBus(aredis, settings.redis_prefix, heartbeat=settings.bus_heartbeat_seconds)
        self.signing_key = signing_key(settings)  # read once (a file, perhaps), not per socket
        self.signer = Signer(self.signing_key)
        self.connections: set[Connection] = set()
        self._event_id: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.task_failures: dict[str, int] = {}
        self.limiter = Limiter(aredis, settings.redis_prefix)
        # argon2 (64 MiB and a core for a moment per login) runs on a pool of its own,
        # at most login_concurrency at once; logins waiting for it hold no thread.
        self._login_pool = ThreadPoolExecutor(settings.login_concurrency, thread_name_prefix="argon2")
        self._login_slots = asyncio.Semaphore(settings.login_concurrency)
        self._logins_waiting = 0
        self._in_threads = 0  # service calls running in threads now (stop() waits for them)
        self.asks = AskGroups(self)  # group commit of viewers' questions
        self.votes = VoteGroups(self)  # and of their votes
        # The vote-flush reads counts on a thread of its own: a burst of votes queued on
        # the shared threads must not hold the counts back from every screen.
        self._flush_pool = ThreadPoolExecutor(1, thread_name_prefix="vote-flush")
        self.metrics = HubMetrics(self)
        self.bus.on_delivered = self.metrics.delivered
        self.bus.on_lag = self.metrics.bus_lag
        # The public programme as JSON text, by (event, schedule channel head): every
        # viewer's snapshot shares it, so a reconnect storm builds it once, not per socket.
        self._schedule_text: dict[tuple[int, int], tuple[float, asyncio.Future[protocol.Encoded]]] = {}
        # The public feed: the same snapshot for every viewer of a language, by channel heads.
        self._feed_text: dict[tuple[int, int, int, int, str | None], asyncio.Future[protocol.Encoded]] = {}
        self.hub_id = uuid.uuid4().hex[:16]  # names this process's report of its viewers' languages
        self.feed_readers: Counter[str] = Counter()  # viewers on this hub by the language they read
        self._votes_dirty: dict[int, set[int]] = {}  # questions voted on since the last vote-flush, by event
        # The languages each event is read in (its viewer and moderator languages), briefly cached.
        self._event_languages: dict[int, tuple[float, frozenset[str]]] = {}
        # Queues the feed's translation into a language a viewer reads (app.py wires the worker queue).
        self.on_feed_language: Callable[[int, str], None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.bus.start()
        self.bus.on_connection_lost(self._resync_all)
        self._supervise("schedule-clock", self._clock_tick, self.settings.schedule_tick_seconds)
        self._supervise("access-recheck", self._recheck_access, self.settings.access_recheck_seconds)
        self._supervise("bus-repair", self._repair_bus, 1.0)
        self._supervise("vote-flush", self._flush_votes, self.settings.vote_flush_seconds)
        self._supervise("feed-languages", self._report_languages, LANGUAGE_REPORT_EVERY)
        if self.settings.retention_days is not None:
            self._supervise("retention-purge", self._purge, PURGE_EVERY)
        self._supervise("contact-purge", self._purge_contacts, PURGE_EVERY)

    async def stop(self) -> None:
        for task in [*self._tasks, *self._background]:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        for conn in list(self.connections):
            conn.close(1001, "server shutting down")
        await self.bus.close()
        # Threads still running a service call hold database connections: let them
        # finish (bounded) before the app disposes the engines under them.
        deadline = time.monotonic() + SHUTDOWN_WAIT_SECONDS
        while self._in_threads and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self._in_threads:
            log.warning("%d service calls still running at shutdown", self._in_threads)
        await anyio.to_thread.run_sync(functools.partial(self._flush_pool.shutdown, wait=True, cancel_futures=True))
        # Waiting logins are dropped; a password check under way finishes (under a second).
        await anyio.to_thread.run_sync(functools.partial(self._login_pool.shutdown, wait=True, cancel_futures=True))

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
        # Staff screens first, then viewers spread over time: a hub of 10,000 viewers
        # must not build 10,000 snapshots in the same moment (nor all hubs at once).
        conns = sorted(self.connections, key=lambda c: c.role == "viewer")
        for conn, delay in zip(conns, resync_delays(len(conns), self.settings.resync_per_second), strict=True):
            conn.resync_after(delay, "bus_reconnected")

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a synchronous service call in a worker thread."""
        self._in_threads += 1
        try:
            return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))
        finally:
            self._in_threads -= 1

    async def run_login(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a password check (argon2) on the login pool: never more than
        ``login_concurrency`` at once, however many logins arrive. A login waits
        for a slot here, not in a thread; when too many already wait, it is told
        to come back (429, retry_after) instead of queueing for ever."""
        if self._logins_waiting >= LOGINS_WAITING_PER_SLOT * self.settings.login_concurrency:
            log.warning("%d logins waiting for a password check: refusing more for now", self._logins_waiting)
            raise RateLimited("too many logins at once; try again in a moment", 1.0)
        self._logins_waiting += 1
        try:
            async with self._login_slots:
                loop = asyncio.get_running_loop()
                self._in_threads += 1
                try:
                    return await loop.run_in_executor(self._login_pool, functools.partial(fn, *args))
                finally:
                    self._in_threads -= 1
        finally:
            self._logins_waiting -= 1

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

    async def schedule_text(self, event_id: int, head: int) -> protocol.Encoded:
        """The programme as of schedule head ``head`` or later, serialised once and shared.
        It is built in a task of its own, not in the caller's: a socket that closes
        (its task cancelled) while others wait for the same build cancels nothing."""
        key = (event_id, head)
        now = time.monotonic()
        cached = self._schedule_text.get(key)
        stale = cached is None or now - cached[0] > SCHEDULE_CACHE_SECONDS
        if cached is None or stale or (cached[1].done() and cached[1].exception() is not None):
            build = asyncio.ensure_future(self._build_schedule_text(event_id))
            self._schedule_text = {k: v for k, v in self._schedule_text.items() if k[0] == event_id and k[1] > head - 8}
            cached = self._schedule_text[key] = (now, build)
        return await asyncio.shield(cached[1])

    async def _build_schedule_text(self, event_id: int) -> protocol.Encoded:
        return protocol.Encoded(protocol.dumps(await self.run(snapshots.schedule, self.ctx, event_id)))

    async def feed_text(self, event_id: int, heads: dict[str, int], language: str | None) -> protocol.Encoded:
        """The feed as of ``heads`` or later for readers of ``language``, built once and
        shared by every viewer with the same heads (a reconnect storm builds it once per language)."""
        texts = heads.get(channels.feed_texts(language), 0) if language else 0
        key = (event_id, heads.get(channels.SCHEDULE, 0), heads.get(channels.FEED, 0), texts, language)
        cached = self._feed_text.get(key)
        if cached is None or (cached.done() and cached.exception() is not None):
            cached = asyncio.ensure_future(self._build_feed_text(event_id, language))
            if len(self._feed_text) >= FEED_TEXT_CACHE:
                self._feed_text = {k: v for k, v in self._feed_text.items() if not v.done()}
            self._feed_text[key] = cached
        return await asyncio.shield(cached)

    async def _build_feed_text(self, event_id: int, language: str | None) -> protocol.Encoded:
        return protocol.Encoded(protocol.dumps(await self.run(feed.snapshot, self.ctx, event_id, language)))

    async def feed_language(self, event_id: int, language: str | None) -> str | None:
        """``language`` if the event is read in it (its viewer or moderator languages),
        else None: the feed comes in its original languages, and no translation into an
        arbitrary code is ever queued (a client cannot fill the workers' queue)."""
        if language is None:
            return None
        now = time.monotonic()
        cached = self._event_languages.get(event_id)
        if cached is None or now - cached[0] > SCHEDULE_CACHE_SECONDS:

            def read() -> frozenset[str]:
                from ..db.models import Event

                with self.ctx.read() as db:
                    event = db.get(Event, event_id)
                    return frozenset([*event.viewer_languages, event.moderator_language] if event else [])

            cached = self._event_languages[event_id] = (now, await self.run(read))
        return language if language in cached[1] else None

    def voted(self, event_id: int, question_id: int) -> None:
        """A vote changed this question's count: announced with the next vote-flush."""
        self._votes_dirty.setdefault(event_id, set()).add(question_id)

    async def _flush_votes(self) -> None:
        """Publish the counts of the questions voted on lately: one event per channel per flush."""
        dirty, self._votes_dirty = self._votes_dirty, {}
        loop = asyncio.get_running_loop()
        for event_id, ids in dirty.items():
            try:
                await loop.run_in_executor(self._flush_pool, feed.publish_votes, self.ctx, event_id, ids)
            except Exception:
                for again_id, again in dirty.items():  # not announced: tried again at the next flush
                    self._votes_dirty.setdefault(again_id, set()).update(again)
                raise

    def reader_joined(self, event_id: int, language: str | None) -> None:
        """A viewer reads the feed in ``language``. The first on this hub has the
        language reported at once and the feed's translation into it queued."""
        if not language:
            return
        self.feed_readers[language] += 1
        if self.feed_readers[language] == 1:
            task = asyncio.create_task(self._new_language(event_id, language), name="feed-language")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def reader_left(self, language: str | None) -> None:
        if language and self.feed_readers[language] > 0:
            self.feed_readers[language] -= 1
            if not self.feed_readers[language]:
                del self.feed_readers[language]

    async def _new_language(self, event_id: int, language: str) -> None:
        try:
            await self._report_languages()
            if self.on_feed_language is not None:
                await self.run(self.on_feed_language, event_id, language)
        except Exception as exc:  # the periodic report and the next reader of it try again
            log.warning("feed language %s not announced yet (%r)", language, exc)

    async def _report_languages(self) -> None:
        try:
            event_id = await self.event_id()
        except DomainError:
            return  # no event yet
        prefix = self.settings.redis_prefix
        counts = Counter(self.feed_readers)
        await self.run(feed.report_languages, self.ctx.publisher.client, prefix, event_id, self.hub_id, counts)

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

    async def _purge(self) -> None:
        """Delete events that ended more than QA_RETENTION_DAYS ago (services/privacy.py)."""
        assert self.settings.retention_days is not None
        purged = await self.run(privacy.purge, self.ctx, self.settings.retention_days)
        if purged:
            log.info("retention: purged event(s) %s", ", ".join(purged))
            self._event_id = None  # looked up again: it may have been one of them

    async def _purge_contacts(self) -> None:
        """Forget contact addresses past their retention (services/privacy.purge_contacts)."""
        await self.run(privacy.purge_contacts, self.ctx)

    async def _repair_bus(self) -> None:
        """Announce channels whose events could not be published (see bus/redis_bus.py)."""
        if self.ctx.publisher.stale_channels:
            await self.run(self.ctx.publisher.flush_stale)

    async def limit_all(self, *limits: tuple[str, int], window: float = 60) -> None:
        """Several limits at once, in one round trip: recorded on all only if all allow it."""
        self._refuse_after(await self.limiter.hit_all(list(limits), window))

    def _refuse_after(self, wait: float) -> None:
        if wait > 0:
            retry_after = math.ceil(wait * 1000) / 1000  # never early
            raise RateLimited(f"too many attempts; try again in {math.ceil(retry_after)} s", retry_after)

    async def limit(self, key: str, limit: int, window: float = 60) -> None:
        """At most ``limit`` hits on ``key`` in any ``window`` seconds, counted across
        every hub process (see ratelimit.py); beyond it, RateLimited with retry_after."""
        self._refuse_after(await self.limiter.hit(key, limit, window))
