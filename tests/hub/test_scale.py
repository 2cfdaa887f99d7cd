"""The hub at event scale: asks committed in groups, one Pub/Sub channel for every
viewer, fan-out in slices, staggered resync after a bus drop, the shared programme
in viewer snapshots, and the outgoing path under back-pressure. Real hubs, real
Redis, real SQLite and PostgreSQL; counts and order, not stopwatches."""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from typing import Any, TypeVar

import pytest
import redis
import redis.asyncio as aioredis
from sqlmodel import select
from websockets.asyncio.client import ClientConnection, connect
from websockets.sync.client import connect as sync_connect

from qa_service.bus import channels, redis_bus
from qa_service.bus.redis_bus import FANOUT_SLICE, SHARED_VIEWERS, AsyncBus, BusEvent, Keys, SyncPublisher, topic
from qa_service.db.models import Question
from qa_service.hub.hub import Hub, resync_delays

from ..conftest import MOD_PASSWORD
from ..faults import RedisServer, redis_of
from ..support import SECOND, WsClient, cookie_header, login, origin_of, start_server, wait_until, ws_client

pytestmark = pytest.mark.integration
T = TypeVar("T")


# ── helpers ─────────────────────────────────────────────────────────────────
def hub_of(srv: Any) -> Hub:
    return srv.server.config.app.state.hub  # type: ignore[no-any-return]


def on_hub_loop(hub: Hub, fn: Callable[[], T], timeout: float = 5 * SECOND) -> T:
    """Run ``fn`` on the hub's event loop (its state is not safe to read from another thread)."""
    assert hub.bus._reader is not None
    loop = hub.bus._reader.get_loop()

    async def call() -> T:
        return fn()

    return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout)


def run_async(make: Callable[[], Awaitable[T]], timeout: float = 60 * SECOND) -> T:
    """Run a coroutine on a loop of its own in its own thread (the browser tests'
    Playwright may hold this thread's loop); its exception is raised here."""
    out: list[T] = []
    err: list[BaseException] = []

    def main() -> None:
        try:
            out.append(asyncio.run(make()))  # type: ignore[arg-type]
        except BaseException as exc:  # handed to the test thread
            err.append(exc)

    runner = threading.Thread(target=main, daemon=True)
    runner.start()
    runner.join(timeout)
    if err:
        raise err[0]
    assert out, f"the scenario did not finish within {timeout:.0f}s"
    return out[0]


def live_speaker(sample: dict[str, Any]) -> int:
    return int(sample["speakers"]["moscow"][0].id)


def ask_frame(rid: str, client_id: str, speaker_id: int, text: str) -> str:
    payload = {"client_id": client_id, "speaker_id": speaker_id, "text": text, "language": "en"}
    return json.dumps({"type": "question.ask", "id": rid, "payload": payload})


class Peer:
    """An asyncio protocol client that keeps every frame with the moment it arrived."""

    def __init__(self, ws: ClientConnection, name: str = "") -> None:
        self.ws = ws
        self.name = name
        self.log: list[tuple[float, dict[str, Any]]] = []

    async def next(self, timeout: float = 10 * SECOND) -> dict[str, Any]:
        msg = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.log.append((time.monotonic(), msg))
        return msg  # type: ignore[no-any-return]

    async def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10 * SECOND) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            msg = await self.next(max(0.01, deadline - time.monotonic()))
            if predicate(msg):
                return msg

    async def hello(self) -> dict[str, Any]:
        """hello, then read up to the snapshot; returns the reply."""
        await self.ws.send(json.dumps({"type": "hello", "id": "hello", "payload": {}}))
        reply = await self.until(lambda m: m["type"] == "reply" and m["id"] == "hello")
        assert reply["ok"], reply
        await self.until(lambda m: m["type"] == "snapshot")
        return reply

    async def read_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                await self.next(left)
            except TimeoutError:
                return

    def of_type(self, type_: str, after: float = 0.0) -> list[tuple[float, dict[str, Any]]]:
        return [(t, m) for t, m in self.log if m["type"] == type_ and t > after]


async def open_peer(url: str, name: str = "", **kwargs: Any) -> Peer:
    ws = await connect(url, open_timeout=30 * SECOND, close_timeout=2 * SECOND, compression=None, **kwargs)
    return Peer(ws, name)


async def close_all(peers: list[Peer]) -> None:
    await asyncio.gather(*(p.ws.close() for p in peers), return_exceptions=True)


def reply_to(request_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["type"] == "reply" and m["id"] == request_id


def event_rows(ctx: Any, event_id: int) -> dict[int, tuple[str, str]]:
    with ctx.read() as db:
        return {
            q.id: (q.viewer_id, q.client_id)
            for q in db.exec(select(Question).where(Question.event_id == event_id))
            if q.id is not None
        }


# ── 3. group commit of asks, end to end ─────────────────────────────────────
ASKERS = 60


def test_sixty_viewers_asking_at_once_share_commits_and_every_ack_is_stored(
    settings_factory, ctx, event_id, sample
) -> None:
    speaker = live_speaker(sample)
    srv = start_server(settings_factory(questions_per_minute=1000))  # 60 askers share one address

    async def scenario() -> tuple[list[str], list[dict[str, Any]]]:
        url = srv.ws_base + "/ws/viewer"
        peers = list(await asyncio.gather(*(open_peer(url, f"v{n}") for n in range(ASKERS))))
        try:
            hellos = await asyncio.gather(*(p.hello() for p in peers))
            # Every frame leaves at the same moment; the hub sees them while a commit runs.
            await asyncio.gather(
                *(
                    p.ws.send(ask_frame(f"ask{n}", f"group-commit-{n:04d}", speaker, f"Question {n}?"))
                    for n, p in enumerate(peers)
                )
            )
            replies = await asyncio.gather(*(p.until(reply_to(f"ask{n}")) for n, p in enumerate(peers)))
        finally:
            await close_all(peers)
        return [h["payload"]["viewer_id"] for h in hellos], list(replies)

    try:
        viewer_ids, replies = run_async(scenario)
        asks = hub_of(srv).asks
        largest, groups = asks.largest, asks.groups
    finally:
        srv.stop()

    assert [r for r in replies if not r["ok"]] == []
    assert all(r["payload"]["duplicate"] is False for r in replies)
    ids = [r["payload"]["question"]["id"] for r in replies]
    assert len(set(ids)) == ASKERS
    # Acknowledged is stored: exactly these 60 rows, each the asker's own.
    expected = {qid: (viewer_ids[n], f"group-commit-{n:04d}") for n, qid in enumerate(ids)}
    assert event_rows(ctx, event_id) == expected
    # Groups formed: fewer commits than questions, at least one holding several.
    assert largest > 1, (largest, groups)
    assert groups < ASKERS


def test_a_rate_limited_viewer_resending_a_stored_question_gets_it_back(
    settings_factory, ctx, event_id, sample
) -> None:
    speaker = live_speaker(sample)
    srv = start_server(settings_factory(questions_per_minute=2))

    def ask(c: WsClient, client_id: str) -> dict[str, Any]:
        payload = {"client_id": client_id, "speaker_id": speaker, "text": f"About {client_id}?", "language": "en"}
        return c.request("question.ask", payload)

    try:
        with ws_client(srv.ws_base + "/ws/viewer") as c:
            assert c.request("hello")["ok"]
            first, second = ask(c, "limited-0001"), ask(c, "limited-0002")
            assert first["ok"] and second["ok"]
            refused = ask(c, "limited-0003")
            assert refused["ok"] is False and refused["error"]["code"] == "rate.limited"
            assert refused["error"]["details"]["retry_after"] > 0
            # Over the limit, a question sent again is not a new one: its ack stands.
            again = ask(c, "limited-0001")
            assert again["ok"] and again["payload"]["duplicate"] is True
            assert again["payload"]["question"]["id"] == first["payload"]["question"]["id"]
            # A new question, or one that never was stored, is still refused.
            for client_id in ("limited-0004", "limited-0003"):
                assert ask(c, client_id)["error"]["code"] == "rate.limited"
    finally:
        srv.stop()
    stored = sorted(cid for _v, cid in event_rows(ctx, event_id).values())
    assert stored == ["limited-0001", "limited-0002"]


# ── 4. one Pub/Sub channel for every viewer ─────────────────────────────────
def test_forty_viewers_ride_one_pubsub_channel_and_each_hears_only_its_own(server, settings, event_id, sample) -> None:
    r = redis.Redis.from_url(settings.redis_url or "")
    shared = f"{settings.redis_prefix}:ps:e{event_id}:{SHARED_VIEWERS}".encode()

    def pubsub_channels() -> set[bytes]:
        return {
            name.encode() if isinstance(name, str) else name
            for name in r.pubsub_channels(f"{settings.redis_prefix}:ps:*")
        }

    try:
        with ExitStack() as stack:
            viewers: list[WsClient] = []
            ids: list[str] = []

            def add(n: int) -> None:
                for _ in range(n):
                    c = stack.enter_context(ws_client(f"{server.ws_base}/ws/viewer"))
                    reply = c.request("hello")
                    assert reply["ok"]
                    viewers.append(c)
                    ids.append(reply["payload"]["viewer_id"])

            add(5)
            schedule = f"{settings.redis_prefix}:ps:e{event_id}:{channels.SCHEDULE}".encode()
            wait_until(lambda: {shared, schedule} <= pubsub_channels(), 5 * SECOND, "the viewers' channels")
            with_five = pubsub_channels()
            add(35)
            with_forty = pubsub_channels()
            assert len(set(ids)) == 40
            assert with_forty == with_five, (with_five, with_forty)  # no channel per viewer
            assert len(with_forty) <= 4, with_forty  # viewers, schedule, the hub's heartbeat
            assert not any(b":viewer:" in name for name in with_forty)
            assert dict(r.pubsub_numsub(shared)) == {shared: 1}  # one subscription: this hub's

            a, b = viewers[0], viewers[1]
            reply = a.request(
                "question.ask",
                {
                    "client_id": uuid.uuid4().hex,
                    "speaker_id": live_speaker(sample),
                    "text": "Only mine?",
                    "language": "en",
                },
            )
            assert reply["ok"], reply
            qid = reply["payload"]["question"]["id"]
            got = a.wait_event(lambda e: e["type"] == "question.created")
            assert got["channel"] == channels.viewer(ids[0]) and got["payload"]["id"] == qid
            b.drain(0.5 * SECOND)  # the grace period: A's event is long there
            for c in viewers[1:]:
                while c.pump(0.01):
                    pass
                assert [e for e in c.events if e["channel"] != channels.SCHEDULE] == []
            assert [e["payload"]["id"] for e in a.events if e["channel"] != channels.SCHEDULE] == [qid]
    finally:
        r.close()


# ── 5. fan-out in slices ────────────────────────────────────────────────────
async def until(predicate: Callable[[], bool], what: str, timeout: float = 5 * SECOND) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def subscriptions(client: aioredis.Redis, channel: str) -> int:
    """How many connections are subscribed to ``channel`` (PUBSUB NUMSUB)."""
    return int(dict(await client.pubsub_numsub(channel)).get(channel.encode(), 0))


def test_fan_out_calls_every_listener_once_in_order_and_lets_other_work_run_between_slices(redis_url) -> None:
    listeners = 3 * FANOUT_SLICE + 7
    # If the dispatch also keeps to a time budget before it yields, each slice outlasts it.
    work = 2 * getattr(redis_bus, "FANOUT_BUDGET", 0.0) / FANOUT_SLICE
    prefix = f"t{uuid.uuid4().hex[:10]}"
    name = topic(1, channels.MODERATION)

    async def scenario() -> tuple[list[object], list[int]]:
        client = aioredis.Redis.from_url(redis_url)
        bus = AsyncBus(client, prefix, heartbeat=1.0)
        delivered: list[int] = []
        bus.on_delivered = delivered.append
        calls: list[object] = []
        done = asyncio.Event()

        async def other_work() -> None:
            calls.append("other")

        def make(i: int) -> Callable[[BusEvent], None]:
            def listener(event: BusEvent) -> None:
                assert event.data["type"] == "fanout.test"
                busy(work)  # a socket write takes a moment: each slice outlasts any time budget
                if i == 0:  # at publish time, other work is scheduled to run as soon as the loop is free
                    asyncio.get_running_loop().create_task(other_work())
                calls.append(i)
                if i == listeners - 1:
                    done.set()

            return listener

        await bus.start()
        try:
            # Listen once the reader is on the bus (see the next test for listening earlier).
            await until(lambda: bus.connected, "the bus reader to connect")
            for i in range(listeners):
                await bus.listen(name, make(i))
            pubsub = Keys(prefix).pubsub(name)
            assert await subscriptions(client, pubsub) == 1  # one Pub/Sub channel for all 775 listeners
            sync = redis.Redis.from_url(redis_url)
            try:
                await asyncio.to_thread(SyncPublisher(sync, prefix, 100).publish, 1, "moderation", "fanout.test", {})
            finally:
                sync.close()
            await asyncio.wait_for(done.wait(), 10 * SECOND)
            await asyncio.sleep(0.1)  # anything late (a second call) would show now
        finally:
            await bus.close()
            await client.aclose()
        return calls, delivered

    calls, delivered = run_async(scenario)
    in_order = [c for c in calls if c != "other"]
    assert in_order == list(range(listeners))  # each exactly once, in the order they listened
    assert calls.count("other") == 1
    # The dispatch let the loop run other work before it reached the last listener.
    assert 0 < calls.index("other") < calls.index(listeners - 1)
    assert delivered == [listeners]


def test_a_topic_listened_while_the_bus_connects_is_subscribed_once(redis_url) -> None:
    """A socket may listen while the bus reader is (re)connecting (a hub just started,
    or resubscribing after a drop). Both then subscribe on the Pub/Sub object before
    it has a connection: each takes one from the pool, the last one wins, the other
    stays subscribed and is never read again (a pool slot and a Redis output buffer
    lost), and if the reader's own subscription (its heartbeat) was the one lost, the
    reader declares the bus dead and every socket resyncs for nothing."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    name = topic(1, channels.MODERATION)

    async def scenario() -> tuple[int, int, int]:
        client = aioredis.Redis.from_url(redis_url)
        bus = AsyncBus(client, prefix, heartbeat=0.3)
        lost: list[int] = []
        bus.on_connection_lost(lambda: lost.append(1))
        await bus.start()
        try:
            await bus.listen(name, lambda _e: None)  # at once: the reader is connecting now
            await until(lambda: bus.connected, "the bus reader to connect")
            subscribed = await subscriptions(client, Keys(prefix).pubsub(name))
            await asyncio.sleep(6 * bus.heartbeat)  # twice the time a missing heartbeat takes to notice
            return subscribed, bus.restarts, len(lost)
        finally:
            await bus.close()
            await client.aclose()

    subscribed, restarts, lost = run_async(scenario)
    assert subscribed == 1, f"{subscribed} connections subscribed to the topic (one leaked)"
    assert (restarts, lost) == (0, 0), "the reader lost its heartbeat and every socket would resync"


# ── 6. staggered resync after a bus drop ────────────────────────────────────
@pytest.mark.parametrize(("count", "per_second"), [(1, 20), (5, 20), (31, 20), (500, 1000)])
def test_resync_delays_are_spread_one_slot_per_socket(count: int, per_second: int) -> None:
    for _ in range(20):  # the jitter is random: many draws
        delays = resync_delays(count, per_second)
        assert len(delays) == count
        assert delays[0] == 0.0
        assert delays == sorted(delays)
        for i, d in enumerate(delays):
            assert i / per_second <= d < (i + 1) / per_second, (i, d)


RESYNC_VIEWERS = 30
RESYNC_PER_SECOND = 10  # the first viewer waits at least 0.1 s: the staff console's margin


def test_after_a_bus_drop_staff_resync_first_and_viewers_are_spread(
    settings_factory, event_id, sample, tmp_path
) -> None:
    with ExitStack() as cleanup:  # the hub stops first, then its Redis
        server = RedisServer(tmp_path / "redis").start()
        cleanup.callback(server.stop)
        srv = start_server(settings_factory(redis_url=server.url, resync_per_second=RESYNC_PER_SECOND))
        cleanup.callback(srv.stop)
        http = login(srv.base, "mod1", MOD_PASSWORD)
        cookie = cookie_header(http)
        http.close()

        async def scenario() -> tuple[Peer, list[Peer], float]:
            url = srv.ws_base + "/ws/viewer"
            mod_url = srv.ws_base + "/ws/moderator"
            mod = await open_peer(
                mod_url, "moderator", additional_headers={"Cookie": cookie}, origin=origin_of(mod_url)
            )
            viewers = list(await asyncio.gather(*(open_peer(url, f"v{n}") for n in range(RESYNC_VIEWERS))))
            peers = [mod, *viewers]
            try:
                await asyncio.gather(*(p.hello() for p in peers))
                cut_at = time.monotonic()
                killer = redis_of(server)
                try:  # the hub's Pub/Sub connection dies; the hub resubscribes, then resyncs everyone
                    assert await asyncio.to_thread(killer.client_kill_filter, _type="pubsub") >= 1
                finally:
                    killer.close()

                async def until_resynced(p: Peer) -> None:
                    await p.until(lambda m: m["type"] == "resync", 20 * SECOND)
                    await p.until(lambda m: m["type"] == "snapshot")

                await asyncio.gather(*(until_resynced(p) for p in peers))
                # Anything more (a second resync) would come now.
                await asyncio.gather(*(p.read_for(1.0 * SECOND) for p in peers))
            finally:
                await close_all(peers)
            return mod, viewers, cut_at

        mod, viewers, cut_at = run_async(scenario)

    for p in (mod, *viewers):
        after = [(t, m) for t, m in p.log if t > cut_at]
        kinds = [m["type"] for _t, m in after if m["type"] in ("resync", "snapshot")]
        assert kinds == ["resync", "snapshot"], (p.name, kinds)  # exactly one resync, its snapshot right after
        assert [m["payload"]["reason"] for _t, m in after if m["type"] == "resync"] == ["bus_reconnected"]
    resynced = {p.name: p.of_type("resync", cut_at)[0][0] for p in (mod, *viewers)}
    viewer_times = sorted(resynced[p.name] for p in viewers)
    assert resynced["moderator"] <= viewer_times[0], "a viewer resynced before the staff console"
    span = viewer_times[-1] - viewer_times[0]
    assert span >= 0.5 * (RESYNC_VIEWERS - 1) / RESYNC_PER_SECOND, f"viewers resynced within {span:.3f}s"


# ── 7. the shared programme in viewer snapshots ─────────────────────────────
def test_viewers_share_one_programme_and_a_changed_segment_shows_to_the_next_one(server, event_id, moderator) -> None:
    url = server.ws_base + "/ws/viewer"

    async def snapshots(n: int) -> list[dict[str, Any]]:
        peers = list(await asyncio.gather(*(open_peer(url) for _ in range(n))))
        try:
            await asyncio.gather(*(p.hello() for p in peers))
        finally:
            await close_all(peers)
        return [p.of_type("snapshot")[0][1] for p in peers]

    first, second = run_async(lambda: snapshots(2))
    assert first["payload"]["schedule"] == second["payload"]["schedule"]
    assert first["seq"]["schedule"] == second["seq"]["schedule"]
    before = {s["id"]: s for s in first["payload"]["schedule"]["segments"]}
    segment = next(s for s in before.values() if s["status"] == "upcoming")

    r = moderator.post(f"/api/segments/{segment['id']}/status", json={"status": "live"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "live"

    (later,) = run_async(lambda: snapshots(1))
    assert later["seq"]["schedule"] > first["seq"]["schedule"]  # the schedule head moved
    after = {s["id"]: s for s in later["payload"]["schedule"]["segments"]}
    assert after[segment["id"]]["status"] == "live"
    assert after[segment["id"]]["version"] > segment["version"]
    # Nothing else of the programme changed.
    assert {k: v for k, v in after.items() if k != segment["id"]} == {
        k: v for k, v in before.items() if k != segment["id"]
    }


# ── 8. the outgoing path under back-pressure ────────────────────────────────
PAD = "x" * 16_000


def waiting(conn: Any) -> list[str]:
    """The messages queued behind a write that waits for the socket (run on the hub's loop)."""
    return list(conn._pending or ())


def test_order_holds_across_the_switch_to_the_flusher_for_a_slow_reader(settings_factory, ctx, event_id) -> None:
    """A reader that pauses (a small receive buffer, nothing read for a while) makes
    the hub's writes wait for the transport; what is sent meanwhile queues behind,
    and the reader then gets every event and reply in the order they were sent.
    (test_fault_hub covers the reader that never catches up: 4408.)"""
    received: list[dict[str, Any]] = []  # every frame, in the order it arrived

    def read_until(predicate: Callable[[dict[str, Any]], bool], what: str) -> None:
        deadline = time.monotonic() + 60 * SECOND
        while not predicate(received[-1] if received else {}):
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            received.append(json.loads(ws.recv(timeout=10 * SECOND)))

    srv = start_server(settings_factory(socket_queue_size=4096))  # room enough: no 4408 here
    try:
        hub = hub_of(srv)
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a phone on a bad link
        raw.connect(("127.0.0.1", int(srv.base.rsplit(":", 1)[1])))
        with sync_connect(
            f"{srv.ws_base}/ws/viewer", sock=raw, compression=None, max_size=2**24, open_timeout=10 * SECOND
        ) as ws:
            ws.send(json.dumps({"type": "hello", "id": "hello", "payload": {}}))
            read_until(lambda m: m.get("type") == "snapshot", "the snapshot")
            viewer_id = received[0]["payload"]["viewer_id"]
            (conn,) = on_hub_loop(hub, lambda: list(hub.connections))
            own = channels.viewer(viewer_id)

            def state() -> tuple[bool, int, int]:
                return on_hub_loop(hub, lambda: (conn._flusher is not None, len(waiting(conn)), conn.last.get(own, 0)))

            def hub_took(seq: int) -> bool:
                return state()[2] == seq

            # Batch A: publish (reading nothing) until writes wait for the socket and
            # messages queue behind the waiting one.
            sent = 0
            while True:
                last_seq = ctx.publisher.publish(event_id, own, "drill.filler", {"n": sent, "pad": PAD})
                sent += 1
                if sent % 20 == 0:
                    wait_until(functools.partial(hub_took, last_seq), 10 * SECOND, "the hub to take the events")
                    flushing, pending, _ = state()
                    if flushing and pending >= 5:
                        break
                assert sent < 2000, "the transport never pushed back"
            batch_a = sent
            # A reply in the middle: after everything before it, before everything after it.
            ws.send(json.dumps({"type": "ping", "id": "middle"}))
            wait_until(
                lambda: on_hub_loop(hub, lambda: any('"middle"' in t for t in waiting(conn))),
                10 * SECOND,
                "the reply queued behind the waiting events",
            )
            for _ in range(batch_a):  # batch B, as big again
                ctx.publisher.publish(event_id, own, "drill.filler", {"n": sent, "pad": PAD})
                sent += 1
            read_until(lambda _m: sum(m["type"] == "drill.filler" for m in received) == sent, "every event")
            # Caught up: the flusher ended, nothing waits, the socket is open (no 4408).
            wait_until(lambda: on_hub_loop(hub, lambda: conn._flusher is None), 5 * SECOND, "the flusher to end")
            assert on_hub_loop(hub, lambda: (conn.closing, waiting(conn))) == (False, [])
    finally:
        srv.stop()

    snapshot_at = next(i for i, m in enumerate(received) if m["type"] == "snapshot")
    after_hello = [m for m in received[snapshot_at + 1 :] if m.get("channel") != channels.SCHEDULE]
    kinds = [m["type"] if m["type"] != "reply" else f"reply:{m['id']}" for m in after_hello]
    # Every filler in order, the pong exactly between batch A and batch B, nothing else.
    assert kinds == ["drill.filler"] * batch_a + ["reply:middle"] + ["drill.filler"] * batch_a
    fillers = [m for m in after_hello if m["type"] == "drill.filler"]
    assert [m["payload"]["n"] for m in fillers] == list(range(sent))
    seqs = [m["seq"] for m in fillers]
    assert seqs == list(range(seqs[0], seqs[0] + sent)), "a gap or a swap in seq"
    assert after_hello[batch_a]["ok"] and after_hello[batch_a]["payload"] == {"pong": True}


# ── 9. a new viewer's first snapshot, and its later ones ───────────────────
def test_a_new_viewers_first_snapshot_is_empty_and_a_resync_shows_what_it_asked(server, ctx, event_id, sample) -> None:
    """The first snapshot of a viewer minted in this hello is built without the
    database (it has asked nothing); a resync on the same socket reads the database
    and shows the question asked since, and a reconnect with the token too."""
    url = server.ws_base + "/ws/viewer"
    with ws_client(url) as viewer:
        hello = viewer.request("hello")
        assert hello["ok"], hello
        viewer_id, token = hello["payload"]["viewer_id"], hello["payload"]["viewer_token"]
        wait_until(lambda: (viewer.pump(0.1), bool(viewer.snapshots))[1], 5 * SECOND, "the first snapshot")
        first = viewer.snapshots[0]["payload"]
        assert first["questions"] == [] and first["limits"]["max_question_chars"] > 0
        asked = viewer.request(
            "question.ask",
            {
                "client_id": f"new-{uuid.uuid4().hex[:12]}",
                "text": "Tariffs next year?",
                "language": "en",
                "speaker_id": live_speaker(sample),
            },
        )
        assert asked["ok"], asked
        qid = asked["payload"]["question"]["id"]
        # A stale marker on the viewer's own channel makes this socket resync from the database.
        ctx.publisher.publish(event_id, channels.viewer(viewer_id), redis_bus.STALE, {})
        wait_until(lambda: (viewer.pump(0.1), len(viewer.snapshots) >= 2)[1], 5 * SECOND, "the resync's snapshot")
        assert [q["id"] for q in viewer.snapshots[1]["payload"]["questions"]] == [qid]
    with ws_client(url) as again:
        assert again.request("hello", {"viewer_token": token})["payload"]["viewer_id"] == viewer_id
        wait_until(lambda: (again.pump(0.1), bool(again.snapshots))[1], 5 * SECOND, "the snapshot")
        assert [q["id"] for q in again.snapshots[0]["payload"]["questions"]] == [qid]


def test_a_stale_marker_during_the_stagger_does_not_resync_the_waiting_viewers_at_once(
    settings_factory, event_id, sample, tmp_path
) -> None:
    """While a viewer waits for its turn to resync after a bus drop, events for it are
    dropped (its coming snapshot covers them): a `channel.stale` marker on `schedule`
    meanwhile must not send every waiting viewer to the database at once."""
    with ExitStack() as cleanup:
        server = RedisServer(tmp_path / "redis").start()
        cleanup.callback(server.stop)
        settings = settings_factory(redis_url=server.url, resync_per_second=RESYNC_PER_SECOND)
        srv = start_server(settings)
        cleanup.callback(srv.stop)
        publisher_client = redis.Redis.from_url(server.url)
        cleanup.callback(publisher_client.close)
        publisher = SyncPublisher(publisher_client, settings.redis_prefix, 100)

        async def scenario() -> tuple[list[Peer], float]:
            url = srv.ws_base + "/ws/viewer"
            viewers = list(await asyncio.gather(*(open_peer(url, f"v{n}") for n in range(RESYNC_VIEWERS))))
            try:
                await asyncio.gather(*(p.hello() for p in viewers))
                killer = redis_of(server)
                try:
                    assert await asyncio.to_thread(killer.client_kill_filter, _type="pubsub") >= 1
                finally:
                    killer.close()
                # As soon as the hub has scheduled the viewers' turns, the marker goes out.
                hub = hub_of(srv)
                deadline = time.monotonic() + 20 * SECOND
                while not on_hub_loop(hub, lambda: any(c._resync_due is not None for c in hub.connections)):
                    assert time.monotonic() < deadline, "the hub never scheduled the resyncs"
                    await asyncio.sleep(0.01)
                await asyncio.to_thread(publisher.publish, event_id, channels.SCHEDULE, redis_bus.STALE, {})
                marked_at = time.monotonic()
                await asyncio.gather(*(p.read_for(RESYNC_VIEWERS / RESYNC_PER_SECOND + 2 * SECOND) for p in viewers))
            finally:
                await close_all(viewers)
            return viewers, marked_at

        viewers, marked_at = run_async(scenario)

    # Those whose turn came well after the marker reached the hub (the first turns are at once).
    waited = [p for p in viewers if p.of_type("resync") and p.of_type("resync")[0][0] > marked_at + 0.05]
    assert len(waited) >= RESYNC_VIEWERS // 2, "too few viewers were still waiting when the marker came"
    for p in waited:  # still waiting for their turn: one resync, at their turn, for the bus
        reasons = [m["payload"]["reason"] for _t, m in p.log if m["type"] == "resync"]
        assert reasons == ["bus_reconnected"], (p.name, reasons)


def test_a_caller_cancelled_while_the_programme_is_built_cancels_nobody_else(server, event_id) -> None:
    """Viewers resyncing at the same schedule head share one build of the programme:
    the socket that started it closing (its task cancelled) must not leave the others
    with a CancelledError, nor poison the cache."""
    hub = hub_of(server)
    head = 10**15 + 7  # a head no socket has used: a fresh build

    async def scenario() -> tuple[bool, dict[str, Any], dict[str, Any]]:
        first = asyncio.ensure_future(hub.schedule_text(event_id, head))
        second = asyncio.ensure_future(hub.schedule_text(event_id, head))
        await asyncio.sleep(0)  # both are waiting for the one build now
        first.cancel()
        shared = json.loads((await second).text)
        again = json.loads((await hub.schedule_text(event_id, head)).text)
        return first.cancelled(), shared, again

    assert hub.bus._reader is not None
    loop = hub.bus._reader.get_loop()
    cancelled, shared, again = asyncio.run_coroutine_threadsafe(scenario(), loop).result(10 * SECOND)
    assert cancelled
    assert shared["event"]["id"] == event_id and shared["segments"]
    assert again == shared
