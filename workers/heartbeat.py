"""Worker heartbeats in Redis, so a hub's /readyz and `qa-service health` can tell
whether a translation worker is alive. Import-light: redis and the settings only
(no argostranslate), so a hub may import it.

One sorted set per deployment: member ``host:pid:tag`` of each worker process,
score the Redis server's clock at its last beat (so clocks of different machines
never disagree). A worker beats every ``worker_lease_seconds / 3``.
"""

from __future__ import annotations

from typing import Any, cast

import redis

from qa_service.settings import Settings

FORGET_AFTER = 3600  # seconds: beats older than this are dropped from the set

_BEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


def key(prefix: str) -> str:
    return f"{prefix}:workers:heartbeat"


def interval(settings: Settings) -> float:
    """How often a worker beats; a worker silent for ``worker_lease_seconds`` is gone."""
    return settings.worker_lease_seconds / 3


def beat(client: redis.Redis, prefix: str, member: str) -> None:
    client.eval(_BEAT, 1, key(prefix), member, FORGET_AFTER)


def stop(client: redis.Redis, prefix: str, member: str) -> None:
    """A worker that shuts down cleanly says so at once."""
    client.zrem(key(prefix), member)


def heartbeat_age(settings: Settings, client: redis.Redis | None = None, *, host: str | None = None) -> float | None:
    """Seconds since the newest worker heartbeat (of workers on ``host``, if given);
    None if no worker beat within the last hour. Raises redis errors: a caller that
    cannot reach Redis cannot know either. Alive means ``age <= worker_lease_seconds``."""
    own = client is None
    if client is None:
        timeout = settings.redis_timeout_seconds
        client = redis.Redis.from_url(settings.redis_url or "", socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        beats: Any = client.zrange(key(settings.redis_prefix), 0, -1, withscores=True)
        seconds, micros = cast(tuple[int, int], client.time())
    finally:
        if own:
            client.close()
    now = seconds + micros / 1e6
    scores = [score for member, score in beats if host is None or _str(member).split(":", 1)[0] == host]
    return max(0.0, now - max(scores)) if scores else None


def worker_alive(settings: Settings, client: redis.Redis | None = None, *, host: str | None = None) -> bool:
    age = heartbeat_age(settings, client, host=host)
    return age is not None and age <= settings.worker_lease_seconds


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
