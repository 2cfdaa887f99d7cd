"""What every worker must agree on about a question's translation, kept in Redis:
who is translating it now (a lease), how often it was tried (attempts), and when
it is tried again (retries). The sweep reads all three to find the questions
nobody is working on.

A lease is a key with a TTL, held by one worker process and renewed by its
background thread while the job runs: a worker killed with kill -9 stops renewing,
its leases lapse within ``worker_lease_seconds`` and the next sweep re-queues.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

import redis

# Transient failures are tried again after these many seconds; the last entry repeats.
RETRY_INTERVALS = [1, 3, 10]
ATTEMPTS_TTL = 24 * 3600
STOPPED_MID_JOB = "the worker stopped mid-job"

# Take (or renew) a lease unless another worker holds it; returns 1 per key taken.
_ACQUIRE = """
local out = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder == false or holder == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""
# Give leases back, but only those still ours.
_RELEASE = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
"""


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def lease(self, qid: int) -> str:
        return f"{self.prefix}:tlease:{qid}"

    def attempts(self, qid: int) -> str:
        return f"{self.prefix}:tattempt:{qid}"

    @property
    def retries(self) -> str:
        return f"{self.prefix}:tretry"

    @property
    def sweep_lock(self) -> str:
        return f"{self.prefix}:tsweep"


class Leases:
    """The leases this process holds; the background thread renews them, but never
    past ``max_hold`` seconds (a job wedged beyond its timeout lets go)."""

    def __init__(self, client: redis.Redis, prefix: str, holder: str, ttl: float, max_hold: float) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.holder = holder
        self.ttl_ms = int(ttl * 1000)
        self.max_hold = max_hold
        self._held: dict[int, float] = {}
        self._unreleased: set[int] = set()
        self._lock = threading.RLock()
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)

    def acquire(self, ids: list[int]) -> list[int]:
        """The ids of ``ids`` this process now holds (the others are in flight elsewhere)."""
        if not ids:
            return []
        with self._lock:
            self._unreleased.difference_update(ids)
        flags = self._acquire(keys=[self.keys.lease(q) for q in ids], args=[self.holder, self.ttl_ms])
        got = [q for q, ok in zip(ids, flags, strict=True) if ok]
        with self._lock:
            for q in got:
                self._held.setdefault(q, time.monotonic())
        return got

    def release(self, ids: Iterable[int]) -> None:
        """Give leases back; if Redis is away, ``renew`` gives them back once it returns
        (a Redis that kept its data would otherwise hold them until they lapse)."""
        ids = list(ids)
        with self._lock:
            for q in ids:
                self._held.pop(q, None)
            self._unreleased.update(ids)
        self.renew()

    def renew(self) -> None:
        """Renew the leases held, give back those released meanwhile (background thread)."""
        now = time.monotonic()
        with self._lock:  # held throughout: a lease released meanwhile must not be renewed after
            if self._unreleased:
                self._release(keys=[self.keys.lease(q) for q in self._unreleased], args=[self.holder])
                self._unreleased.clear()
            held = [q for q, since in self._held.items() if now - since < self.max_hold]
            if held:
                self._acquire(keys=[self.keys.lease(q) for q in held], args=[self.holder, self.ttl_ms])

    def leased(self, ids: list[int]) -> set[int]:
        """Which of ``ids`` some worker holds now."""
        held: set[int] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            held |= {q for q, v in zip(chunk, self.client.mget([self.keys.lease(q) for q in chunk]), strict=True) if v}
        return held


class Attempts:
    """How often each question was tried, across jobs, claims and workers."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.keys = Keys(prefix)

    def begin(self, ids: list[int]) -> dict[int, tuple[int, str | None]]:
        """Count one more attempt each; returns (attempt number, the last attempt's
        error). Until the attempt ends it reads as 'stopped mid-job': a kill -9 counts."""
        pipe = self.client.pipeline()
        for q in ids:
            key = self.keys.attempts(q)
            pipe.hget(key, "error")
            pipe.hincrby(key, "n", 1)
            pipe.hset(key, "error", STOPPED_MID_JOB)
            pipe.expire(key, ATTEMPTS_TTL)
        res = pipe.execute()
        out = {}
        for i, q in enumerate(ids):
            error, n = res[4 * i], res[4 * i + 1]
            out[q] = (int(n), error.decode() if isinstance(error, bytes) else error)
        return out

    def failed(self, ids: Iterable[int], error: str) -> None:
        pipe = self.client.pipeline()
        for q in ids:
            pipe.hset(self.keys.attempts(q), "error", error)
        pipe.execute()

    def refund(self, ids: Iterable[int]) -> None:
        """Not the question's fault (the database or Redis was away): it does not count."""
        pipe = self.client.pipeline()
        for q in ids:
            pipe.hincrby(self.keys.attempts(q), "n", -1)
            pipe.hdel(self.keys.attempts(q), "error")
        pipe.execute()

    def clear(self, ids: Iterable[int]) -> None:
        """The question reached an end (done or untranslated); a re-translate starts afresh."""
        keys = [self.keys.attempts(q) for q in ids]
        if keys:
            self.client.delete(*keys)


class Retries:
    """Questions waiting to be tried again (a sorted set: question id by due time)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.key = Keys(prefix).retries

    def schedule(self, ids: Iterable[int], attempt: int) -> float:
        delay = RETRY_INTERVALS[min(attempt, len(RETRY_INTERVALS)) - 1]
        due = time.time() + delay
        mapping = {str(q): due for q in ids}
        if mapping:
            self.client.zadd(self.key, mapping)  # type: ignore[arg-type]
        return delay

    def take_due(self, limit: int = 200) -> list[int]:
        """Due questions, each handed to exactly one caller (ZREM decides)."""
        due: Any = self.client.zrangebyscore(self.key, "-inf", time.time(), start=0, num=limit)
        return [int(m) for m in due if self.client.zrem(self.key, m)]

    def waiting(self) -> set[int]:
        members: Any = self.client.zrange(self.key, 0, -1)
        return {int(m) for m in members}
