"""One websocket: its outgoing path (written at once while the socket takes data,
queued behind a flusher task when it pushes back, bounded), subscriptions with gap
detection, replay on reconnect and resync when replay is impossible.

A resync always completes: the snapshot is built first (retried with backoff
while the database or Redis is away) and only then are ``resync`` and the
snapshot sent together; if it cannot be built, the socket is closed with 1013
(try again later) and the client reconnects. Never a ``resync`` left hanging."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ..bus.redis_bus import STALE, AsyncBus, BusEvent, topic
from . import protocol

log = logging.getLogger(__name__)

# Builds a snapshot; given the channel heads read just before (a snapshot is never older than them).
SnapshotFn = Callable[[dict[str, int]], Awaitable[dict[str, Any]]]
# Waits between attempts to build a snapshot; after the last one the socket is closed (1013).
SNAPSHOT_RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0)


class SnapshotUnavailable(Exception):
    """The snapshot could not be built (database or Redis away) after every retry."""


async def _finish(coro: Coroutine[Any, Any, None], waiting_on: object) -> None:
    """Drive a coroutine that was started by hand (see Connection._write) to its end,
    as a task would: wait for what it yielded, resume it, until it returns."""
    while True:
        try:
            if isinstance(waiting_on, asyncio.Future):
                await asyncio.wait([waiting_on])  # done, failed or cancelled: the coroutine reads which
            else:
                await asyncio.sleep(0)  # a bare yield
        except BaseException:
            coro.close()  # as a cancelled task would: its waits and locks are let go
            raise
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            return


class Connection:
    """Outgoing messages are written at once, in the caller's step, while the socket
    takes them (the common case: no task, no queue, nothing kept per idle socket).
    When the peer reads slowly and the transport pushes back, a flusher task finishes
    that write and sends what queued up behind it, in order; past ``queue_size``
    waiting messages the socket is cut as a slow consumer (4408) and resyncs."""

    # Slots: one of these lives as long as each socket (10,000 per hub at an event).
    __slots__ = (
        "ws",
        "role",
        "bus",
        "event_id",
        "channels",
        "snapshot_fn",
        "last",
        "_max_pending",
        "_pending",
        "_flusher",
        "_buffer",
        "_resync_task",
        "_resync_again",
        "_resync_due",
        "closing",
        "close_code",
        "on_slow_consumer",
        "on_resync",
        "still_allowed",
        "_close_reason",
        "_rate",
        "_tokens",
        "_stamp",
        "_strikes",
    )

    def __init__(
        self,
        ws: WebSocket,
        bus: AsyncBus,
        event_id: int,
        *,
        queue_size: int,
        messages_per_second: int,
        role: str = "viewer",
    ) -> None:
        self.ws = ws
        self.role = role
        self.bus = bus
        self.event_id = event_id
        self.channels: list[str] = []
        self.snapshot_fn: SnapshotFn | None = None
        self.last: dict[str, int] = {}
        self._max_pending = queue_size
        self._pending: deque[str] | None = None  # behind a write that waits for the socket (made when needed)
        self._flusher: asyncio.Task[None] | None = None
        self._buffer: list[BusEvent] | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self._resync_again: str | None = None
        self._resync_due: asyncio.TimerHandle | None = None  # a resync scheduled for later (resync_after)
        self.closing = False
        self.close_code: int | None = None
        # Called once when the socket is cut for reading too slowly (metrics).
        self.on_slow_consumer: Callable[[], None] | None = None
        # Called with the reason of each resync (metrics).
        self.on_resync: Callable[[str], None] | None = None
        # For staff sockets: re-checks that the login or host link still holds (hub.py).
        self.still_allowed: Callable[[], bool] | None = None
        self._close_reason = ""
        # Token bucket against message floods.
        self._rate = float(messages_per_second)
        self._tokens = self._rate * 2
        self._stamp = time.monotonic()
        self._strikes = 0

    # ── outgoing ────────────────────────────────────────────────────────────
    def send(self, message: dict[str, Any]) -> None:
        """Send a message; never blocks (see the class docstring)."""
        self.send_text(protocol.dumps(message))

    def send_text(self, text: str) -> None:
        """Send an already serialised message (a bus event is serialised once for every socket)."""
        if self.closing:
            return
        if self._flusher is not None:  # an earlier write waits for the socket: keep the order
            if self._pending is None:
                self._pending = deque()
            if len(self._pending) >= self._max_pending:
                log.warning("slow consumer: closing socket with 4408 (%d messages waiting)", len(self._pending))
                if self.on_slow_consumer is not None:
                    self.on_slow_consumer()
                self.close(protocol.CLOSE_SLOW_CONSUMER, "slow consumer: reconnect with your last seq")
                return
            self._pending.append(text)
            return
        self._write(text)

    def _write(self, text: str) -> None:
        # Starlette's and uvicorn's send complete without suspending while the transport
        # takes data; run them here, and only hand them to a task when they do suspend.
        coro = self.ws.send_text(text)
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            return
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:  # the peer went away
            log.debug("send failed: %s", exc)
            self.closing = True
            return
        self._flusher = asyncio.create_task(self._flush(coro, waiting_on), name="ws-flusher")

    async def _flush(self, coro: Coroutine[Any, Any, None] | None, waiting_on: object) -> None:
        try:
            if coro is not None:
                await _finish(coro, waiting_on)
            while self._pending:
                await self.ws.send_text(self._pending.popleft())
            self._pending = None
            if self.closing and self.ws.application_state == WebSocketState.CONNECTED:
                await self.ws.close(self.close_code or 1000, self._close_reason)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:  # the peer went away mid-send
            log.debug("flusher stopped: %s", exc)
            self.closing = True
        except Exception:  # a bug: what waited is lost, so the client must start again
            log.exception("sending failed: closing the socket (1011) so the client reconnects")
            self.closing, self._pending = True, None
            if self.ws.application_state == WebSocketState.CONNECTED:
                await self.ws.close(1011, "server error: reconnect")
        finally:
            self._flusher = None

    def close(self, code: int, reason: str, *, flush: bool = False) -> None:
        """Close after what is being written; ``flush`` also sends what waits behind
        it (when there is room), else that is dropped: the client resyncs anyway."""
        if self.closing:
            return
        self.closing, self.close_code, self._close_reason = True, code, reason
        if self._pending is not None and (not flush or len(self._pending) >= self._max_pending):
            self._pending.clear()
        if self._flusher is None:  # else the running flusher closes when done
            self._flusher = asyncio.create_task(self._flush(None, None), name="ws-close")

    async def drain(self, timeout: float) -> None:
        """Give the flusher a moment to send what waits (and the close frame)."""
        if self._flusher is not None and not self._flusher.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._flusher), timeout)
            except (TimeoutError, asyncio.CancelledError):
                pass

    async def stop(self) -> None:
        self.closing = True  # for good: a late request (retune) subscribes nothing more
        if self._resync_due is not None:
            self._resync_due.cancel()
            self._resync_due = None
        for ch in self.channels:
            await self.bus.unlisten(topic(self.event_id, ch), self._on_event)
        self.channels = []
        for task in (self._flusher, self._resync_task):
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
        if self._resync_due is not None:
            return  # a snapshot is coming (resync_after): its heads cover this event
        if self._buffer is not None:
            if len(self._buffer) < self._max_pending:
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
        self.send_text(event.raw)

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
        if mode == "replayed" and len(replayed) > self._max_pending // 2:
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
                found = await self.bus.heads([topic(self.event_id, ch) for ch in self.channels])
                heads = dict(zip(self.channels, found, strict=True))
                return heads, await self.snapshot_fn(heads)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database or Redis is away: retried, then the socket is closed
                last_error = exc
                log.warning("snapshot failed (%r); retrying in %.2fs", exc, delay or SNAPSHOT_RETRY_DELAYS[0])
        raise SnapshotUnavailable(str(last_error))

    def _send_built(self, built: tuple[dict[str, int], dict[str, Any]]) -> None:
        heads, snapshot = built
        self.last = dict(heads)
        self.send_text(protocol.snapshot_message(heads, snapshot))

    def _flush_buffer(self) -> None:
        buffered, self._buffer = self._buffer or [], None
        for event in buffered:
            self._deliver(event)

    async def retune(self, old: str | None, new: str, reason: str) -> None:
        """Listen to channel ``new`` instead of ``old`` (a viewer reading the feed in
        another language), then resync: the snapshot that follows starts the new one.
        A socket that is closing (its request outlived it) listens to nothing more."""
        if self.closing or self.snapshot_fn is None:
            return
        if old is not None and old in self.channels:
            await self.bus.unlisten(topic(self.event_id, old), self._on_event)
            self.channels.remove(old)
            self.last.pop(old, None)
        if new not in self.channels:
            self.channels.append(new)
            await self.bus.listen(topic(self.event_id, new), self._on_event)
            if self.closing:  # it closed (and stopped) while we subscribed: undo it
                await self.bus.unlisten(topic(self.event_id, new), self._on_event)
                if new in self.channels:
                    self.channels.remove(new)
                return
        self.request_resync(reason)

    def resync_after(self, delay: float, reason: str) -> None:
        """Resync in ``delay`` seconds; until then events are dropped (the snapshot's
        heads cover them), so a gap or a stale marker meanwhile does not resync at once.
        Asked again, the earlier schedule gives way to the new one."""
        if self._resync_due is not None:
            self._resync_due.cancel()
            self._resync_due = None
        if delay <= 0:
            self.request_resync(reason)
            return

        def due() -> None:
            self._resync_due = None
            self.request_resync(reason)

        self._resync_due = asyncio.get_running_loop().call_later(delay, due)

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
            except asyncio.CancelledError:
                if not self.closing:  # not this socket's own stop(): never leave it silent
                    self._buffer = None
                    self.close(protocol.CLOSE_TRY_AGAIN, "the server could not resync you: reconnect")
                raise
            except SnapshotUnavailable as exc:
                log.warning("resync impossible (%s): closing the socket so the client reconnects", exc)
                self._buffer = None
                self.close(protocol.CLOSE_TRY_AGAIN, "the server could not resync you: reconnect")
                return
            log.info("resync (%s): snapshot sent", reason)
            if self.on_resync is not None:
                self.on_resync(reason)
            self.send({"type": "resync", "payload": {"reason": reason}})
            self._send_built(built)
            overflowed = self._buffer is not None and len(self._buffer) >= self._max_pending
            if self._resync_again is None and not overflowed:
                self._flush_buffer()  # may itself find a gap or a stale marker: that sets _resync_again
            reason = self._resync_again or ("buffer_overflow" if overflowed else None)
            if reason is not None:
                self._buffer = []  # what is buffered is older than the next snapshot
