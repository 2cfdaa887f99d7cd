"""The Redis bus: Streams for history, Pub/Sub for live fan-out.

Why both: a Stream per channel keeps the last N events with gap-free integer
sequence numbers, so a reconnecting client gets exactly what it missed (or an
explicit resync when its number fell out of the window). Pub/Sub wakes every
hub process at once without each hub holding an XREAD per channel. One Lua
script does INCR + XADD + PUBLISH atomically, so the order of sequence numbers
is the order of delivery on every hub.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

log = logging.getLogger(__name__)

_PUBLISH_LUA = """
local seq = redis.call('INCR', KEYS[1])
local body = '{"seq":' .. seq .. ',' .. string.sub(ARGV[1], 2)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], seq .. '-0', 'd', body)
redis.call('PUBLISH', KEYS[3], body)
return seq
"""


@dataclass(frozen=True)
class BusEvent:
    """One event on a channel. ``data`` is the JSON object delivered to clients."""

    channel: str
    seq: int
    data: dict[str, Any]


def topic(event_id: int, channel: str) -> str:
    """The bus-wide name of a client-facing channel of one event."""
    return f"e{event_id}:{channel}"


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def seq(self, topic: str) -> str:
        return f"{self.prefix}:seq:{topic}"

    def stream(self, topic: str) -> str:
        return f"{self.prefix}:log:{topic}"

    def pubsub(self, topic: str) -> str:
        return f"{self.prefix}:ps:{topic}"

    def topic_of(self, pubsub_name: str) -> str:
        return pubsub_name[len(self.prefix) + 4 :]


def encode(channel: str, type_: str, payload: dict[str, Any]) -> str:
    # The Lua script splices {"seq":N, in front of the rest of this object.
    return json.dumps({"channel": channel, "type": type_, "payload": payload}, separators=(",", ":"), default=str)


class SyncPublisher:
    """Publishing from synchronous code (HTTP handlers in threads, RQ workers)."""

    def __init__(self, client: redis.Redis, prefix: str, history_size: int) -> None:
        self.client = client
        self.prefix = prefix
        self.history_size = history_size
        self._script = client.register_script(_PUBLISH_LUA)

    def publish(self, event_id: int, channel: str, type_: str, payload: dict[str, Any]) -> int:
        keys, t = Keys(self.prefix), topic(event_id, channel)
        return int(
            self._script(
                keys=[keys.seq(t), keys.stream(t), keys.pubsub(t)],
                args=[encode(channel, type_, payload), self.history_size],
            )
        )

    def current_seq(self, event_id: int, channel: str) -> int:
        return int(self.client.get(Keys(self.prefix).seq(topic(event_id, channel))) or 0)


class Replay:
    """Result of asking for events after a sequence number."""

    def __init__(self, events: list[BusEvent] | None, head: int) -> None:
        self.events = events  # None: the window no longer reaches back far enough
        self.head = head


class AsyncBus:
    """One per hub process: a Pub/Sub reader that dispatches to local listeners."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._listeners: dict[str, set[Callable[[BusEvent], None]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._lost_handlers: set[Callable[[], Awaitable[None] | None]] = set()

    async def start(self) -> None:
        # A placeholder subscription keeps the Pub/Sub connection open.
        await self._pubsub.subscribe(self.keys.pubsub("__hub__"))
        self._reader = asyncio.create_task(self._read_loop(), name="bus-reader")

    async def close(self) -> None:
        if self._reader:
            self._reader.cancel()
            try:
                await self._reader
            except asyncio.CancelledError:
                pass
        await self._pubsub.aclose()

    def on_connection_lost(self, handler: Callable[[], Awaitable[None] | None]) -> None:
        self._lost_handlers.add(handler)

    async def listen(self, topic: str, callback: Callable[[BusEvent], None]) -> None:
        listeners = self._listeners.setdefault(topic, set())
        first = not listeners
        listeners.add(callback)
        if first:
            await self._pubsub.subscribe(self.keys.pubsub(topic))

    async def unlisten(self, topic: str, callback: Callable[[BusEvent], None]) -> None:
        listeners = self._listeners.get(topic)
        if not listeners:
            return
        listeners.discard(callback)
        if not listeners:
            del self._listeners[topic]
            try:
                await self._pubsub.unsubscribe(self.keys.pubsub(topic))
            except (redis.RedisError, OSError) as exc:  # the reader will notice and resync everyone
                log.warning("unsubscribe from %s failed: %s", topic, exc)

    async def head(self, topic: str) -> int:
        return int(await self.client.get(self.keys.seq(topic)) or 0)

    async def replay(self, topic: str, after: int) -> Replay:
        """Events with seq > ``after``, or ``events=None`` if some were trimmed away."""
        head = await self.head(topic)
        if after > head:
            return Replay(None, head)  # the client knows a future: the bus was reset
        if after == head:
            return Replay([], head)
        entries = await self.client.xrange(self.keys.stream(topic), min=f"{after + 1}-0", max="+")
        events = [_entry_to_event(fields) for _id, fields in (entries or []) if fields]
        if not events or events[0].seq != after + 1:
            return Replay(None, head)
        return Replay(events, head)

    async def _read_loop(self) -> None:
        while True:
            try:
                async for message in self._pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    name = self.keys.topic_of(_str(message["channel"]))
                    data = json.loads(message["data"])
                    event = BusEvent(channel=data["channel"], seq=int(data["seq"]), data=data)
                    for callback in list(self._listeners.get(name, ())):
                        callback(event)
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, OSError) as exc:
                log.warning("bus connection lost (%s); resubscribing", exc)
                await self._resubscribe()
                # Events published meanwhile were not seen: everyone resyncs.
                for handler in list(self._lost_handlers):
                    result = handler()
                    if result is not None:
                        await result

    async def _resubscribe(self) -> None:
        delay = 0.2
        while True:
            await asyncio.sleep(delay)
            try:
                await self._pubsub.aclose()
                self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                await self._pubsub.subscribe(
                    self.keys.pubsub("__hub__"), *[self.keys.pubsub(t) for t in self._listeners]
                )
                return
            except (redis.RedisError, OSError) as exc:
                log.warning("bus resubscribe failed: %s", exc)
                delay = min(delay * 2, 5.0)


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry_to_event(fields: dict[Any, Any]) -> BusEvent:
    raw = fields[b"d"] if b"d" in fields else fields["d"]
    data = json.loads(raw)
    return BusEvent(channel=data["channel"], seq=int(data["seq"]), data=data)
