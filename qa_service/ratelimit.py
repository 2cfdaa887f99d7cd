"""Rate limits that hold: at most ``limit`` hits in *any* ``window`` seconds.

A sliding-window log per key: a Redis sorted set of the times of the hits that
were let through, checked and written by one Lua script (atomic, so every hub
process shares one count) on Redis's own clock (hubs need not agree on the
time). A fixed window would let twice the limit through around its boundary;
this does not. A refused hit is not recorded (it did nothing), and the answer
says how long until the oldest hit leaves the window: ``retry_after``.

While Redis is away a log of the same kind in this process stands in (limits
then count per process), and for a second after a failure Redis is not asked
again: a dead Redis costs one timeout a second, not one per request.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import OrderedDict, deque

import redis.asyncio as aioredis

from .domain.errors import DomainError
from .services.context import OUTAGE_ERRORS

log = logging.getLogger(__name__)

REDIS_TIMEOUT = 1.0  # seconds one limit check may wait for Redis before the local log decides
RETRY_AFTER_FAILURE = 1.0  # seconds the local log decides alone after Redis failed
MAX_LOCAL_KEYS = 100_000  # bounded memory under a flood of new keys: the least recently hit go

# KEYS: the keys' sorted sets.  ARGV: window (µs), a unique member, then each key's limit.
# All or nothing: a hit is recorded on every key only if every key allows it (a viewer
# refused by its own limit uses up nothing of its address's). Returns 0 (allowed,
# recorded) or the microseconds until the hit would be allowed on every key.
_HIT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= tonumber(ARGV[2 + i]) then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    wait = math.max(wait, math.max(1, tonumber(oldest[2]) + window - now))
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, math.ceil(window / 1000) + 1)
end
return 0
"""


class RateLimited(DomainError):
    """Too many hits: ``details.retry_after`` is the number of seconds to wait
    (REST answers 429 with ``Retry-After``)."""

    status = 429

    def __init__(self, message: str, retry_after: float, code: str = "rate.limited") -> None:
        super().__init__(code, message, retry_after=retry_after)


class Limiter:
    """One per hub process; the count lives in Redis and is shared by all of them."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_HIT_LUA)
        self._local: OrderedDict[str, deque[float]] = OrderedDict()  # least recently hit first
        self._failed_at = -RETRY_AFTER_FAILURE
        # Members of the sorted sets: unique across hubs (this process's id) and within it (a counter).
        self._member_prefix = uuid.uuid4().hex[:12]
        self._members = itertools.count()

    async def hit(self, key: str, limit: int, window: float) -> float:
        """Record a hit on ``key``: 0.0 if allowed, else the seconds until one is."""
        return await self.hit_all([(key, limit)], window)

    async def hit_all(self, limits: list[tuple[str, int]], window: float) -> float:
        """One hit on several keys at once, in one round trip, all or nothing: 0.0 if
        every key allows it (recorded on all), else the seconds until every key does."""
        if time.monotonic() - self._failed_at >= RETRY_AFTER_FAILURE:
            try:
                keys = [f"{self.prefix}:rl:{key}" for key, _limit in limits]
                member = f"{self._member_prefix}{next(self._members)}"
                args: list[int | str] = [int(window * 1_000_000), member, *(limit for _key, limit in limits)]
                wait_us = await asyncio.wait_for(self._script(keys=keys, args=args), REDIS_TIMEOUT)
                return int(wait_us) / 1_000_000
            except OUTAGE_ERRORS as exc:  # TimeoutError is an OSError
                self._failed_at = time.monotonic()
                log.warning("rate limits in Redis unavailable (%r); this process counts alone for now", exc)
        return self._local_hit_all(limits, window)

    def _local_hit_all(self, limits: list[tuple[str, int]], window: float) -> float:
        now = time.monotonic()
        logs = [(self._local_log(key, now, window), limit) for key, limit in limits]
        wait = max((max(1e-6, hits[0] + window - now) for hits, limit in logs if len(hits) >= limit), default=0.0)
        if wait == 0.0:
            for hits, _limit in logs:
                hits.append(now)
        return wait

    def _local_log(self, key: str, now: float, window: float) -> deque[float]:
        """This process's log of ``key``'s hits within the window."""
        hits = self._local.get(key)
        if hits is None:
            # Evict the least recently hit keys, not all: a flood of new keys (say,
            # made-up usernames) must not wipe the counts of the ones under attack.
            while len(self._local) >= MAX_LOCAL_KEYS:
                self._local.popitem(last=False)
            hits = self._local[key] = deque()
        else:
            self._local.move_to_end(key)
        while hits and hits[0] <= now - window:
            hits.popleft()
        return hits
