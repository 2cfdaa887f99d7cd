"""One websocket: a bounded outgoing queue with one sender task, subscriptions
with gap detection, replay on reconnect and resync when replay is impossible.

A resync always completes: the snapshot is built first (retried with backoff
while the database or Redis is away) and only then are ``resync`` and the
snapshot sent together; if it cannot be built, the socket is closed with 1013
(try again later) and the client reconnects. Never a ``resync`` left hanging."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ..bus.redis_bus import STALE, AsyncBus, BusEvent, topic
from . import protocol

log = logging.getLogger(__name__)

SnapshotFn = Callable[[], Awaitable[dict[str, Any]]]
_CLOSE = object()
# Waits between attempts to build a snapshot; after the last one the socket is closed (1013).
SNAPSHOT_RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0)


class SnapshotUnavailable(Exception):
    """The snapshot could not be built (database or Redis away) after every retry."""


class Connection:
    def __init__(
        self, ws: WebSocket, bus: AsyncBus, event_id: int, *, queue_size: int, messages_per_second: int
    ) -> None:
        self.ws = ws
        self.bus = bus
        self.event_id = event_id
        self.channels: list[str] = []
        self.snapshot_fn: SnapshotFn | None = None
        self.last: dict[str, int] = {}
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize=queue_size)
        self._buffer: list[BusEvent] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self._resync_again: str | None = None
        self.closing = False
        self.close_code: int | None = None
        # For staff sockets: re-checks that the login or host link still holds (hub.py).
        self.still_allowed: Callable[[], bool] | None = None
        self._close_reason = ""
        # Token bucket against message floods.
        self._rate = float(messages_per_second)
        self._tokens = self._rate * 2
        self._stamp = time.monotonic()
        self._strikes = 0

    # ── outgoing ────────────────────────────────────────────────────────────
    def start(self) -> None:
        self._sender = asyncio.create_task(self._send_loop(), name="ws-sender")

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message; never blocks. A full queue means a slow client: drop it."""
        if self.closing:
            return
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("slow consumer: closing socket with 4408 (queue of %d full)", self._queue.maxsize)
            self.close(protocol.CLOSE_SLOW_CONSUMER, "slow consumer: reconnect with your last seq")

    def close(self, code: int, reason: str, *, flush: bool = False) -> None:
        """Close after the sender is done; ``flush`` sends what is queued first
        (when there is room), else it is skipped: the client resyncs anyway."""
        if self.closing:
            return
        self.closing, self.close_code = True, code
        if not flush or self._queue.full():
            while not self._queue.empty():
                self._queue.get_nowait()
        self._queue.put_nowait(_CLOSE)
        self._close_reason = reason

    async def _send_loop(self) -> None:
        try:
            while True:
                item = await self._queue.get()
                if item is _CLOSE:
                    if self.ws.application_state == WebSocketState.CONNECTED:
                        await self.ws.close(self.close_code or 1000, self._close_reason)
                    return
                await self.ws.send_text(protocol.dumps(item))  # type: ignore[arg-type]
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:  # the peer went away mid-send
            log.debug("sender stopped: %s", exc)
            self.closing = True

    async def drain(self, timeout: float) -> None:
        """Give the sender a moment to flush what is queued (and the close frame)."""
        if self._sender is not None and not self._sender.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._sender), timeout)
            except (TimeoutError, asyncio.CancelledError):
                pass

    async def stop(self) -> None:
        for ch in self.channels:
            await self.bus.unlisten(topic(self.event_id, ch), self._on_event)
        self.channels = []
        for task in (self._sender, self._resync_task):
            if task and not task.done():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass

    # ── flood control ───────────────────────────────────────────────────────
    def allow_message(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._rate * 2, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            self._strikes = max(0, self._strikes - 1)
            return True
        self._strikes += 1
        if self._strikes > self._rate * 5:
            self.close(protocol.CLOSE_FLOOD, "too many messages", flush=True)
        return False

    # ── incoming events ─────────────────────────────────────────────────────
    def _on_event(self, event: BusEvent) -> None:
        if self._buffer is not None:
            if len(self._buffer) < self._queue.maxsize:
                self._buffer.append(event)
            # else: dropped; the gap it leaves after the snapshot asks for another one
        else:
            self._deliver(event)

    def _deliver(self, event: BusEvent) -> None:
        last = self.last.get(event.channel, 0)
        if event.seq <= last:
            return  # already covered by the snapshot or a replay
        if event.seq != last + 1:
            self.request_resync("gap")
            return
        self.last[event.channel] = event.seq
        if event.data.get("type") == STALE:
            self.request_resync("missed_events")  # a publish failed on this channel: rebuild from the database
            return
        self.send(event.data)

    async def attach(
        self, channels: list[str], snapshot_fn: SnapshotFn, resume: object, reply: Callable[[str], dict[str, Any]]
    ) -> None:
        """Subscribe, then send ``reply(mode)`` and either replay what the client
        missed (mode "replayed") or a resync notice and a snapshot ("snapshot").
        Raises SnapshotUnavailable (nothing sent) if no snapshot could be built."""
        self.snapshot_fn = snapshot_fn
        self._buffer = []
        for ch in channels:
            if ch not in self.channels:
                await self.bus.listen(topic(self.event_id, ch), self._on_event)
                self.channels.append(ch)
        replayed: list[BusEvent] = []
        mode = "snapshot"
        if isinstance(resume, dict) and resume:
            mode = "replayed"
            for ch in channels:
                after = resume.get(ch)
                if not isinstance(after, int) or isinstance(after, bool) or after < 0:
                    mode = "snapshot"
                    break
                r = await self.bus.replay(topic(self.event_id, ch), after)
                if r.events is None:
                    mode = "snapshot"
                    break
                self.last[ch] = after
                replayed.extend(r.events)
        reason = "history_unavailable"
        if mode == "replayed" and len(replayed) > self._queue.maxsize // 2:
            # Replaying that much would overflow this socket's queue, cut it as a slow
            # consumer, and the client would come back to the same: a snapshot is smaller.
            mode, reason = "snapshot", "too_far_behind"
        built = await self._build_snapshot() if mode == "snapshot" else None
        self.send(reply(mode))
        if built is not None:
            if isinstance(resume, dict) and resume:
                self.send({"type": "resync", "payload": {"reason": reason}})
            self._send_built(built)
        else:
            for event in replayed:
                self._deliver(event)
        self._flush_buffer()

    async def _build_snapshot(self) -> tuple[dict[str, int], dict[str, Any]]:
        """Heads first, then the snapshot: events in between are buffered and
        delivered after it (duplicates are harmless: versions decide)."""
        assert self.snapshot_fn is not None
        last_error: Exception | None = None
        for delay in (0.0, *SNAPSHOT_RETRY_DELAYS):
            if delay:
                await asyncio.sleep(delay)
            if self.closing:
                break
            try:
                heads = {ch: await self.bus.head(topic(self.event_id, ch)) for ch in self.channels}
                return heads, await self.snapshot_fn()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database or Redis is away: retried, then the socket is closed
                last_error = exc
                log.warning("snapshot failed (%r); retrying in %.2fs", exc, delay or SNAPSHOT_RETRY_DELAYS[0])
        raise SnapshotUnavailable(str(last_error))

    def _send_built(self, built: tuple[dict[str, int], dict[str, Any]]) -> None:
        heads, snapshot = built
        self.last = dict(heads)
        self.send({"type": "snapshot", "seq": heads, "payload": snapshot})

    def _flush_buffer(self) -> None:
        buffered, self._buffer = self._buffer or [], None
        for event in buffered:
            self._deliver(event)

    def request_resync(self, reason: str) -> None:
        if self.closing or self.snapshot_fn is None:
            return
        if self._resync_task and not self._resync_task.done():
            self._resync_again = reason  # asked for during one: another follows (it may have started too early)
            return
        self._buffer = []
        self._resync_task = asyncio.create_task(self._resync(reason), name="ws-resync")

    async def _resync(self, reason: str | None) -> None:
        while reason is not None and not self.closing:
            self._resync_again = None
            try:
                built = await self._build_snapshot()
            except SnapshotUnavailable as exc:
                log.warning("resync impossible (%s): closing the socket so the client reconnects", exc)
                self._buffer = None
                self.close(protocol.CLOSE_TRY_AGAIN, "the server could not resync you: reconnect")
                return
            log.info("resync (%s): snapshot sent", reason)
            self.send({"type": "resync", "payload": {"reason": reason}})
            self._send_built(built)
            overflowed = self._buffer is not None and len(self._buffer) >= self._queue.maxsize
            if self._resync_again is None and not overflowed:
                self._flush_buffer()  # may itself find a gap or a stale marker: that sets _resync_again
            reason = self._resync_again or ("buffer_overflow" if overflowed else None)
            if reason is not None:
                self._buffer = []  # what is buffered is older than the next snapshot
