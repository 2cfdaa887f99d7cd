"""The Redis bus: Streams for history, Pub/Sub for live fan-out.

Why both: a Stream per channel keeps the last N events with gap-free integer
sequence numbers, so a reconnecting client gets exactly what it missed (or an
explicit resync when its number fell out of the window). Pub/Sub wakes every
hub process at once without each hub holding an XREAD per channel. One Lua
script does INCR + XADD + PUBLISH atomically, so the order of sequence numbers
is the order of delivery on every hub.

Sequence numbers survive nothing by themselves: a Redis restarted without its
data starts every counter again, and one restarted from an RDB snapshot (or an
AOF that lost its last second) holds counters older than numbers already handed
out. So numbers are counted from an *epoch base* (Redis's clock in microseconds
when the epoch began, kept beside the counters): a channel starts at base + 1.
A new epoch begins when the key is gone or when the Redis server is another run
than the one the epoch began on (its ``run_id``, checked by every hub when it
connects and by a publisher recovering from a failure); counters below the base
count from the base. A client that resumes from an old number then finds a gap,
never a repeat, and gets a snapshot.

Publishing is never silently lost either: a publish that fails marks its
channel stale; the next publish that works (or the hub's repair task) sends a
``channel.stale`` marker on it, and every socket on that channel resyncs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

from .channels import VIEWER_PREFIX

log = logging.getLogger(__name__)

# The epoch base, created from Redis's own clock (microseconds) when missing.
_BASE_LUA = """
local base = redis.call('GET', KEYS[1])
if not base then
  local t = redis.call('TIME')
  base = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('SET', KEYS[1], base)
end
"""
# KEYS: counter, stream, pubsub channel, epoch.  ARGV: body, maxlen.
# A counter below the epoch base belongs to an older epoch: it starts again at the base.
_PUBLISH_LUA = (
    _BASE_LUA.replace("KEYS[1]", "KEYS[4]")
    + """
local cur = redis.call('GET', KEYS[1])
if (not cur) or tonumber(cur) < tonumber(base) then
  redis.call('SET', KEYS[1], base)
end
redis.call('INCR', KEYS[1])
local seq = redis.call('GET', KEYS[1])
local body = '{"seq":' .. seq .. ',' .. string.sub(ARGV[1], 2)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], seq .. '-0', 'd', body)
redis.call('PUBLISH', KEYS[3], body)
return seq
"""
)
# KEYS: counter, epoch. The last number of a channel (its epoch base if nothing
# was published on it in this epoch).
_HEAD_LUA = (
    _BASE_LUA.replace("KEYS[1]", "KEYS[2]")
    + """
local seq = redis.call('GET', KEYS[1])
if (not seq) or tonumber(seq) < tonumber(base) then return base end
return seq
"""
)
# KEYS: epoch, epoch's server.  ARGV: this server's run_id. A Redis restarted
# (whatever it restored from disk: an RDB snapshot or an AOF that lost its last
# second may hold counters older than numbers already handed out) starts a new
# epoch: every number from now on is above every number before.
_EPOCH_CHECK_LUA = """
local before = redis.call('GET', KEYS[2])
if before == ARGV[1] then return 0 end
local t = redis.call('TIME')
redis.call('SET', KEYS[1], t[1] .. string.format('%06d', tonumber(t[2])))
redis.call('SET', KEYS[2], ARGV[1])
if before then return 1 end
return 2
"""
# What _EPOCH_CHECK_LUA returns: the same server, a restarted one, the first check ever.
EPOCH_SAME, EPOCH_RESTARTED, EPOCH_FIRST = 0, 1, 2
SHARED_VIEWERS = "viewers"  # the one Pub/Sub channel all viewer channels of an event travel on
FANOUT_SLICE = 32  # listeners called between two looks at the clock
FANOUT_BUDGET = 0.001  # seconds of fan-out before the bus reader lets the event loop run other work
STALE = "channel.stale"  # event type: some events of this channel were never published
RETRY_AFTER_FAILURE = 1.0  # seconds a publisher fails fast after a failed publish (then tries again)


@dataclass(frozen=True)
class BusEvent:
    """One event on a channel. ``data`` is the JSON object delivered to clients."""

    channel: str
    seq: int
    data: dict[str, Any]
    raw: str  # ``data`` as the JSON text it came in: sent to every socket as is (serialised once)


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
        """The Pub/Sub channel a topic's events travel on. Every viewer's own channel of
        an event shares one (the hub routes by the event's ``channel`` field): a hub
        holds a handful of subscriptions whatever its audience, not one per viewer."""
        event, _, channel = topic.partition(":")
        if channel.startswith(VIEWER_PREFIX):
            return f"{self.prefix}:ps:{event}:{SHARED_VIEWERS}"
        return f"{self.prefix}:ps:{topic}"

    @property
    def epoch(self) -> str:
        return f"{self.prefix}:epoch"

    @property
    def epoch_server(self) -> str:
        return f"{self.prefix}:epoch:server"

    def topic_of(self, pubsub_name: str) -> str:
        return pubsub_name[len(self.prefix) + 4 :]


_SURROGATES = re.compile("[\ud800-\udfff]")  # a str that UTF-8 cannot encode


def compact_json(value: Any) -> str:
    """JSON as sent on the wire: compact, UTF-8 text (not \\u escapes: Arabic and
    Chinese stay a third of the size); a lone surrogate (from a client's string) is
    escaped, or the text would not be UTF-8."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if _SURROGATES.search(text):
        text = json.dumps(value, separators=(",", ":"), default=str)
    return text


def encode(channel: str, type_: str, payload: dict[str, Any]) -> str:
    # The Lua script splices {"seq":N, in front of the rest of this object.
    return compact_json({"channel": channel, "type": type_, "payload": payload})


class SyncPublisher:
    """Publishing from synchronous code (HTTP handlers in threads, RQ workers).

    A failed publish raises, and its channel is remembered as stale until a
    ``channel.stale`` marker went out on it (see the module docstring). For
    RETRY_AFTER_FAILURE seconds after a failure, publishes fail at once without
    touching the network: a Redis that stopped answering costs one timeout a
    second, not one per event of every request."""

    def __init__(self, client: redis.Redis, prefix: str, history_size: int) -> None:
        self.client = client
        self.prefix = prefix
        self.history_size = history_size
        self.keys = Keys(prefix)
        self._script = client.register_script(_PUBLISH_LUA)
        self._head = client.register_script(_HEAD_LUA)
        self._epoch_check = client.register_script(_EPOCH_CHECK_LUA)
        self._stale: set[tuple[int, str]] = set()
        self.on_published: Callable[[int], None] | None = None  # events published (metrics)
        self._failed_at = 0.0
        self._lock = threading.Lock()

    @property
    def recently_failed(self) -> bool:
        return time.monotonic() - self._failed_at < RETRY_AFTER_FAILURE

    def _publish(self, event_id: int, channel: str, type_: str, payload: dict[str, Any]) -> int:
        t = topic(event_id, channel)
        keys = [self.keys.seq(t), self.keys.stream(t), self.keys.pubsub(t), self.keys.epoch]
        return int(self._script(keys=keys, args=[encode(channel, type_, payload), self.history_size]))

    def publish(self, event_id: int, channel: str, type_: str, payload: dict[str, Any]) -> int:
        try:
            if self.recently_failed:
                raise redis.ConnectionError("the bus failed a moment ago; not retrying yet")
            if self._stale:
                self.flush_stale()
            seq = self._publish(event_id, channel, type_, payload)
            if self.on_published is not None:
                self.on_published(1)
            return seq
        except (redis.RedisError, OSError):
            with self._lock:
                self._stale.add((event_id, channel))
                self._failed_at = time.monotonic()
            raise

    def publish_many(self, items: list[tuple[int, str, str, dict[str, Any]]]) -> list[Exception]:
        """Publish in order in one round trip (a pipeline); returns the errors. Each
        event that failed marks its channel stale, as publish() does."""
        try:
            if self.recently_failed:
                raise redis.ConnectionError("the bus failed a moment ago; not retrying yet")
            if self._stale:
                self.flush_stale()
            pipe = self.client.pipeline(transaction=False)
            for event_id, channel, type_, payload in items:
                t = topic(event_id, channel)
                keys = [self.keys.seq(t), self.keys.stream(t), self.keys.pubsub(t), self.keys.epoch]
                self._script(keys=keys, args=[encode(channel, type_, payload), self.history_size], client=pipe)
            replies: list[Any] = pipe.execute(raise_on_error=False)
        except (redis.RedisError, OSError) as exc:
            replies = [exc] * len(items)
        errors = [r for r in replies if isinstance(r, Exception)]
        if self.on_published is not None and len(errors) < len(items):
            self.on_published(len(items) - len(errors))
        if errors:
            with self._lock:
                for (event_id, channel, _t, _p), reply in zip(items, replies, strict=True):
                    if isinstance(reply, Exception):
                        self._stale.add((event_id, channel))
                self._failed_at = time.monotonic()
        return errors

    def flush_stale(self) -> int:
        """Send the ``channel.stale`` marker on every channel a publish failed on;
        returns how many are still stale (Redis still away)."""
        with self._lock:
            pending = sorted(self._stale)
        if not pending:
            return 0
        try:
            self.ensure_epoch()  # Redis may have restarted meanwhile
            for event_id, channel in pending:
                self._publish(event_id, channel, STALE, {})
                with self._lock:
                    self._stale.discard((event_id, channel))
                log.warning("announced missed events on %s: its clients resync", channel)
        except (redis.RedisError, OSError) as exc:
            self._failed_at = time.monotonic()
            log.warning("bus still unreachable; %d channel(s) stay stale (%s)", len(self._stale), exc)
            raise
        return len(self._stale)

    def ensure_epoch(self) -> bool:
        """Start a new epoch if Redis restarted since the current one began."""
        run_id = str(self.client.info("server")["run_id"])
        return int(self._epoch_check(keys=[self.keys.epoch, self.keys.epoch_server], args=[run_id])) != EPOCH_SAME

    @property
    def stale_channels(self) -> int:
        return len(self._stale)

    def current_seq(self, event_id: int, channel: str) -> int:
        return int(self._head(keys=[self.keys.seq(topic(event_id, channel)), self.keys.epoch]))


class Replay:
    """Result of asking for events after a sequence number."""

    def __init__(self, events: list[BusEvent] | None, head: int) -> None:
        self.events = events  # None: the window no longer reaches back far enough
        self.head = head


class AsyncBus:
    """One per hub process: a Pub/Sub reader that dispatches to local listeners.

    The reader is supervised: whatever ends it (a Redis error, a bug in a
    listener, a half-open connection that stays silent) it resubscribes with
    backoff and then tells every lost-connection handler, so each socket
    resyncs from the database. A heartbeat sent to a channel of this hub's own
    every ``heartbeat`` seconds must come back within three of them, else the
    connection is treated as dead."""

    def __init__(self, client: aioredis.Redis, prefix: str, *, heartbeat: float = 2.0) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.heartbeat = heartbeat
        self.hub_id = uuid.uuid4().hex[:12]
        self._beat_topic = f"__hub__:{self.hub_id}"
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        # Per topic, its listeners in the order they came (a dict: ordered, O(1) removal).
        self._listeners: dict[str, dict[Callable[[BusEvent], None], None]] = {}
        self._topics_on: dict[str, int] = {}  # Pub/Sub channel -> listened topics travelling on it
        # One (un)subscribe at a time: two at once while the Pub/Sub connection is being
        # opened would each open one, and one would leak, subscribed, out of the pool.
        self._subscribing = asyncio.Lock()
        self._later: set[asyncio.Future[None]] = set()  # subscribes finished for others (kept from GC)
        self._reader: asyncio.Task[None] | None = None
        self._lost_handlers: set[Callable[[], Awaitable[None] | None]] = set()
        self._head = client.register_script(_HEAD_LUA)
        self._epoch_check = client.register_script(_EPOCH_CHECK_LUA)
        self.last_heard = time.monotonic()  # any message, heartbeats included
        self.connected = False
        self.restarts = 0
        self.on_delivered: Callable[[int], None] | None = None  # events handed to listeners (metrics)
        self.on_lag: Callable[[float], None] | None = None  # heartbeat round trip in seconds (metrics)

    async def start(self) -> None:
        """Start the reader; a hub starts even while Redis is away (it connects when it can)."""
        self._reader = asyncio.create_task(self._supervise(), name="bus-reader")

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

    @property
    def heartbeat_age(self) -> float:
        """Seconds since the reader last heard anything (its own heartbeat at least)."""
        return time.monotonic() - self.last_heard

    @property
    def healthy(self) -> bool:
        return self.connected and self.heartbeat_age < self.heartbeat * 3

    async def listen(self, topic: str, callback: Callable[[BusEvent], None]) -> None:
        listeners = self._listeners.setdefault(topic, {})
        first = not listeners
        listeners[callback] = None
        if not first:
            return
        name = self.keys.pubsub(topic)
        self._topics_on[name] = self._topics_on.get(name, 0) + 1
        if self._topics_on[name] > 1:
            return
        try:
            async with self._subscribing:
                await self._pubsub.subscribe(name)
        except (redis.RedisError, OSError) as exc:
            # The reader resubscribes every listened topic when it reconnects.
            log.warning("subscribe to %s failed (%s); the bus reader will retry", topic, exc)
        except BaseException:  # cancelled (the socket went away) or a bug: undo, and keep others subscribed
            listeners.pop(callback, None)
            if listeners:
                later = asyncio.ensure_future(self._subscribe_for_others(name))
                self._later.add(later)
                later.add_done_callback(self._later.discard)
            else:
                del self._listeners[topic]
                self._topics_on[name] -= 1
                if self._topics_on[name] == 0:
                    del self._topics_on[name]
            raise

    async def _subscribe_for_others(self, name: str) -> None:
        """The subscribe a cancelled listen() did not finish, for the listeners that came meanwhile."""
        try:
            async with self._subscribing:
                await self._pubsub.subscribe(name)
        except (redis.RedisError, OSError) as exc:
            log.warning("subscribe to %s failed (%s); the bus reader will retry", name, exc)

    async def unlisten(self, topic: str, callback: Callable[[BusEvent], None]) -> None:
        listeners = self._listeners.get(topic)
        if not listeners:
            return
        listeners.pop(callback, None)
        if listeners:
            return
        del self._listeners[topic]
        name = self.keys.pubsub(topic)
        self._topics_on[name] -= 1
        if self._topics_on[name] == 0:
            del self._topics_on[name]
            try:
                async with self._subscribing:
                    await self._pubsub.unsubscribe(name)
            except (redis.RedisError, OSError) as exc:  # the reader will notice and resync everyone
                log.warning("unsubscribe from %s failed: %s", topic, exc)

    @property
    def listener_count(self) -> int:
        return sum(len(v) for v in self._listeners.values())

    async def head(self, topic: str) -> int:
        return int(await self._head(keys=[self.keys.seq(topic), self.keys.epoch]))

    async def heads(self, topics: list[str]) -> list[int]:
        """The heads of several topics in one round trip."""
        if len(topics) == 1:
            return [await self.head(topics[0])]
        pipe = self.client.pipeline(transaction=False)
        for t in topics:
            await self._head(keys=[self.keys.seq(t), self.keys.epoch], client=pipe)
        return [int(h) for h in await pipe.execute()]

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

    # ── the supervised reader ───────────────────────────────────────────────
    async def _supervise(self) -> None:
        connected = await self._connect()
        while True:
            if connected:
                try:
                    await self._read()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # any end of the reader is a lost connection: logged, then recovered
                    self.restarts += 1
                    log.warning("bus reader stopped (%r); resubscribing, then every socket resyncs", exc)
            self.connected = False
            await self._resubscribe()
            await self._notify_lost()
            connected = True

    async def _connect(self) -> bool:
        try:
            async with self._subscribing:
                await asyncio.wait_for(self._subscribe_all(), timeout=5.0)
            await self._check_epoch()
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("bus not reachable at start (%r); retrying", exc)
            return False

    async def _check_epoch(self) -> None:
        info = await self.client.info("server")
        found = await self._epoch_check(keys=[self.keys.epoch, self.keys.epoch_server], args=[str(info["run_id"])])
        if found == EPOCH_RESTARTED:
            log.warning("Redis restarted: a new epoch of sequence numbers begins")
        elif found == EPOCH_FIRST:
            log.info("first epoch of sequence numbers on this Redis")

    async def _read(self) -> None:
        self.last_heard = time.monotonic()
        self.connected = True
        next_beat = 0.0
        while True:
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + self.heartbeat
                await asyncio.wait_for(
                    self.client.publish(self.keys.pubsub(self._beat_topic), repr(time.monotonic())),
                    timeout=self.heartbeat,
                )
            if self.heartbeat_age > self.heartbeat * 3:
                raise ConnectionError(f"no heartbeat for {self.heartbeat_age:.1f}s: the Pub/Sub connection is dead")
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=min(1.0, self.heartbeat))
            if message is None:
                continue
            self.last_heard = time.monotonic()
            if message.get("type") != "message":
                continue
            name = self.keys.topic_of(_str(message["channel"]))
            if name == self._beat_topic:
                if self.on_lag is not None:  # our own heartbeat came back: the bus's round trip
                    self.on_lag(max(0.0, time.monotonic() - float(message["data"])))
                continue
            event = _decode(message["data"])
            # The topic is the event's own channel (a shared Pub/Sub channel carries many).
            name = f"{name.partition(':')[0]}:{event.channel}"
            listeners = self._listeners.get(name)
            if listeners:
                await self._dispatch(name, event, list(listeners))

    async def _dispatch(self, name: str, event: BusEvent, callbacks: list[Callable[[BusEvent], None]]) -> None:
        """Call every listener; every FANOUT_BUDGET seconds the event loop runs other
        work (a moderator's request must not wait for 10,000 sockets to be written)."""
        until = time.perf_counter() + FANOUT_BUDGET
        for i, callback in enumerate(callbacks, 1):
            try:
                callback(event)
            except Exception:  # one broken listener must not stop the others
                log.exception("listener of %s failed", name)
            if i % FANOUT_SLICE == 0 and time.perf_counter() > until:
                await asyncio.sleep(0)
                until = time.perf_counter() + FANOUT_BUDGET
        if self.on_delivered is not None:
            self.on_delivered(len(callbacks))

    async def _subscribe_all(self) -> None:
        await self._pubsub.subscribe(self.keys.pubsub(self._beat_topic), *self._topics_on)

    async def _resubscribe(self) -> None:
        delay = 0.2
        while True:
            await asyncio.sleep(delay)
            try:
                async with self._subscribing:
                    try:
                        await self._pubsub.aclose()
                    except Exception as exc:  # the old connection is gone anyway
                        log.debug("closing the old Pub/Sub connection: %r", exc)
                    self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                    await asyncio.wait_for(self._subscribe_all(), timeout=5.0)
                await asyncio.wait_for(self._check_epoch(), timeout=5.0)
                log.warning("bus reconnected")
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever it is, keep trying: the reader must come back
                log.warning("bus resubscribe failed: %r", exc)
                delay = min(delay * 2, 1.0)  # cheap to try; every second of delay is a second of stale screens

    async def _notify_lost(self) -> None:
        # Events published meanwhile were not seen: everyone resyncs.
        for handler in list(self._lost_handlers):
            try:
                result = handler()
                if result is not None:
                    await result
            except Exception:
                log.exception("connection-lost handler failed")


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode(body: bytes | str) -> BusEvent:
    raw = _str(body)
    data = json.loads(raw)
    return BusEvent(channel=data["channel"], seq=int(data["seq"]), data=data, raw=raw)


def _entry_to_event(fields: dict[Any, Any]) -> BusEvent:
    return _decode(fields[b"d"] if b"d" in fields else fields["d"])
