"""Drills on the hub side, each with processes of its own: a hub killed under
load, the database cut off, a half-open Redis link, a slow consumer, access
withdrawn from open sockets, a publish that failed."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import redis
from sqlmodel import select
from websockets.exceptions import ConnectionClosed

from qa_service.bus.redis_bus import STALE, SyncPublisher, topic
from qa_service.db.models import Question, User
from qa_service.services import questions

from .drills import Asker, ConsoleMirror
from .faults import RedisServer, ServiceProcess, TcpProxy, hub, postgres_target, through_proxy
from .hub.test_fanout import moderator_ws
from .support import SECOND, cookie_header, origin_of, start_server, wait_until, ws_client
from .test_fault_redis import HUB_ENV, db_versions, record, staff_cookie

pytestmark = pytest.mark.integration


def _ask(ctx: Any, event_id: int, speaker_id: int, n: int) -> dict[str, Any]:
    payload = {
        "client_id": f"drill-{n}-{time.monotonic_ns()}",
        "speaker_id": speaker_id,
        "text": "Fault?",
        "language": "en",
    }
    return questions.ask(ctx, event_id, "viewer-drill-0001", payload).question


def _live_console(h: ServiceProcess) -> ConsoleMirror:
    """A moderator console on hub ``h`` that has had its first snapshot."""
    h.wait_ready("/readyz")
    console = ConsoleMirror(h.base.replace("http", "ws") + "/ws/moderator", staff_cookie(h.base))
    console.start()
    wait_until(lambda: console.snapshots > 0, 10 * SECOND, "first snapshot")
    return console


def _readyz(base: str) -> tuple[int, dict[str, Any]]:
    try:
        r = httpx.get(base + "/readyz", timeout=15 * SECOND)
    except httpx.HTTPError as exc:
        return 0, {"error": str(exc)}
    return r.status_code, r.json()


def test_hub_killed_under_load_loses_nothing_and_doubles_nothing(
    settings_factory, ctx, event_id, sample, db_url, tmp_path
) -> None:
    # A worker without language packs: a question the killed hub committed but could not
    # announce reaches the consoles when the worker marks it (untranslated), as in production.
    settings = settings_factory(argos_dir=tmp_path / "no-packs")
    a, b = (hub(settings, **HUB_ENV).start() for _ in range(2))
    worker = ServiceProcess(settings, "worker", QA_WORKER_SWEEP_SECONDS="1", QA_WORKER_LEASE_SECONDS="3").start()
    askers: list[Asker] = []
    console: ConsoleMirror | None = None
    try:
        a.wait_ready()
        b.wait_ready()
        urls = [h.base.replace("http", "ws") + "/ws/viewer" for h in (a, b)]
        speaker = sample["speakers"]["moscow"][0].id
        askers = [Asker(urls, speaker) for _ in range(3)]  # each alternates hubs on reconnect
        console = ConsoleMirror(b.base.replace("http", "ws") + "/ws/moderator", staff_cookie(b.base))
        for t in (*askers, console):
            t.start()
        wait_until(lambda: sum(len(x.acked) for x in askers) > 30, 30 * SECOND, "asks before the kill")
        a.kill()  # kill -9: sockets cut mid-request, no shutdown
        killed_at = time.monotonic()
        time.sleep(2 * SECOND)
        for x in askers:
            x.stop()
        acked = {cid: qid for x in askers for cid, qid in x.acked.items()}
        truth = db_versions(ctx, event_id)
        wait_until(lambda: console.view() == db_versions(ctx, event_id), 30 * SECOND, "console equal to the database")
        with ctx.read() as db:
            rows = list(db.exec(select(Question).where(Question.event_id == event_id)))
        figures = {
            "database": db_url.split(":", 1)[0],
            "acknowledged": len(acked),
            "acknowledged_after_kill": sum(1 for x in askers for t in x.ack_times if t > killed_at),
            # Every asker's first acknowledgement after the kill: how long its viewer was cut off.
            "askers_back_seconds": sorted(
                round(min((t for t in x.ack_times if t > killed_at), default=float("inf")) - killed_at, 2)
                for x in askers
            ),
            "lost": sum(1 for qid in acked.values() if qid not in truth),
            "doubled": len(rows) - len({(q.viewer_id, q.client_id) for q in rows}),
            "unacknowledged_at_stop": sum(len(x.unacked) for x in askers),
        }
        record(f"hub-kill-{figures['database']}", figures)
        assert figures["lost"] == 0 and figures["doubled"] == 0
        assert figures["acknowledged_after_kill"] > 0, "askers did not carry on on the other hub"
        assert figures["unacknowledged_at_stop"] == 0
        assert b.alive()
    finally:
        for t in (*askers, *([console] if console else [])):
            t.stop_flag.set()
        a.stop()
        b.stop()
        worker.stop()


@pytest.mark.postgres
def test_database_cut_is_reported_answered_clearly_and_recovered(settings_factory, ctx, event_id, sample, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("the database is cut with a TCP proxy: PostgreSQL only (SQLite is a file)")
    proxy = TcpProxy(*postgres_target(db_url)).start()
    settings = settings_factory(database_url=through_proxy(db_url, proxy))
    h = hub(settings, QA_DB_TIMEOUT_SECONDS="2", **HUB_ENV).start()
    try:
        h.wait_ready("/readyz")
        ws_base = h.base.replace("http", "ws")
        speaker = sample["speakers"]["moscow"][0].id
        with ws_client(ws_base + "/ws/viewer") as viewer:
            greeted = viewer.request("hello")
            assert greeted["ok"]
            token = greeted["payload"]["viewer_token"]
            proxy.cut()
            cut_at = time.monotonic()
            status, body = _readyz(h.base)
            assert status == 503 and body["checks"]["database"].startswith("unreachable"), body
            not_ready_after = time.monotonic() - cut_at
            reply = viewer.request(
                "question.ask", {"client_id": "during-cut", "speaker_id": speaker, "text": "Cut?", "language": "en"}
            )
            assert reply["ok"] is False
            assert reply["error"]["code"] == "service.unavailable"
            assert reply["error"]["details"]["retry_after"] > 0
        # A viewer coming back cannot get its snapshot (its questions are in the database):
        # a clear error, then 1013 (try again later).
        with ws_client(ws_base + "/ws/viewer") as late:
            with pytest.raises(ConnectionClosed) as closed:
                late.request("hello", {"viewer_token": token}, timeout=30 * SECOND)
                late.drain(5 * SECOND)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        proxy.restore()
        restored_at = time.monotonic()
        wait_until(lambda: _readyz(h.base)[0] == 200, 30 * SECOND, "ready again")
        ready_after = time.monotonic() - restored_at
        with ws_client(ws_base + "/ws/viewer") as viewer:
            assert viewer.request("hello")["ok"]
            reply = viewer.request(
                "question.ask", {"client_id": "after-cut", "speaker_id": speaker, "text": "Back?", "language": "en"}
            )
            assert reply["ok"], reply
        with ctx.read() as db:
            stored = {q.client_id for q in db.exec(select(Question).where(Question.event_id == event_id))}
        assert "after-cut" in stored and "during-cut" not in stored  # refused, so not stored: nothing half-done
        record(
            "database-cut-postgresql",
            {"not_ready_reported_seconds": round(not_ready_after, 2), "ready_again_seconds": round(ready_after, 2)},
        )
        assert h.alive()
    finally:
        h.stop()
        proxy.stop()


@pytest.mark.postgres
def test_a_ping_is_answered_while_the_sockets_ask_waits_on_a_stalled_database(
    settings_factory, ctx, event_id, sample, db_url
) -> None:
    """A client judges its socket by pings (docs/protocol.md): one stuck behind an ask that
    waits on the database would make every asker reconnect during a database stall."""
    if not db_url.startswith("postgresql"):
        pytest.skip("the database is stalled with a TCP proxy: PostgreSQL only (SQLite is a file)")
    proxy = TcpProxy(*postgres_target(db_url)).start()
    settings = settings_factory(database_url=through_proxy(db_url, proxy))
    h = hub(settings, QA_DB_TIMEOUT_SECONDS="3", **HUB_ENV).start()
    try:
        h.wait_ready("/readyz")
        with ws_client(h.base.replace("http", "ws") + "/ws/viewer") as viewer:
            assert viewer.request("hello")["ok"]
            proxy.freeze()  # the database's connections stay open but carry nothing
            ask = {"client_id": "stalled-ask-01", "speaker_id": sample["speakers"]["moscow"][0].id, "text": "Stalled?"}
            viewer.send_raw(json.dumps({"type": "question.ask", "id": "ask-1", "payload": ask | {"language": "en"}}))
            pong = viewer.request("ping", timeout=1.5 * SECOND)
            assert pong["ok"] and pong["payload"] == {"pong": True}
            assert "ask-1" not in viewer.replies, "the ask was not stalled: the test proves nothing"
            proxy.thaw()
            wait_until(lambda: (viewer.pump(0.1), "ask-1" in viewer.replies)[1], 30 * SECOND, "the ask's reply")
            assert [r["id"] for r in viewer.reply_log][-2:] == [pong["id"], "ask-1"]  # answered out of order, by id
        assert h.alive()
    finally:
        h.stop()
        proxy.stop()


def test_half_open_bus_is_noticed_by_heartbeat_and_every_console_resyncs(
    settings_factory, ctx, event_id, sample, tmp_path
) -> None:
    server = RedisServer(tmp_path / "redis").start()
    proxy = TcpProxy("127.0.0.1", server.port).start()
    hub_settings = settings_factory(redis_url=f"redis://127.0.0.1:{proxy.port}/0")
    h = hub(hub_settings, QA_REDIS_TIMEOUT_SECONDS="1", **HUB_ENV).start()
    # The test publishes straight to Redis, past the frozen proxy.
    publisher = SyncPublisher(redis.Redis.from_url(server.url), hub_settings.redis_prefix, 100)
    direct = type(ctx)(hub_settings, ctx.engine, publisher)
    console: ConsoleMirror | None = None
    try:
        console = _live_console(h)
        proxy.freeze()  # the hub's connections stay open but nothing flows: no error, only silence
        frozen_at = time.monotonic()
        q = _ask(direct, event_id, sample["speakers"]["moscow"][0].id, 1)

        def bus_reported() -> bool:
            status, body = _readyz(h.base)
            return status == 503 and body.get("checks", {}).get("bus") != "ok"

        wait_until(bus_reported, 20 * SECOND, "/readyz to name the silent bus")
        noticed = time.monotonic() - frozen_at
        assert q["id"] not in console.view()
        proxy.thaw()
        wait_until(lambda: q["id"] in console.view(), 30 * SECOND, "the question missed while frozen")
        wait_until(lambda: console.view() == db_versions(ctx, event_id), 10 * SECOND, "console equal to the database")
        # Told either way the protocol allows: a resync with its snapshot, or (if the snapshot
        # could not be built while Redis was silent) a 1013 close and a reconnect.
        assert console.resyncs or 1013 in console.closes, (console.resyncs, console.closes)
        record(
            "bus-half-open",
            {"bus_reported_seconds": round(noticed, 2), "resyncs": console.resyncs, "closes": console.closes},
        )
    finally:
        if console is not None:
            console.stop_flag.set()
        h.stop()
        proxy.stop()
        server.stop()


def test_a_failed_publish_is_announced_and_its_sockets_resync(
    settings_factory, ctx, event_id, sample, tmp_path
) -> None:
    """Redis answers the hub but refused one publish: the change is in the database,
    and the next publish that works sends channel.stale first, so consoles resync."""
    server = RedisServer(tmp_path / "redis").start()
    proxy = TcpProxy("127.0.0.1", server.port).start()
    hub_settings = settings_factory(redis_url=server.url)
    h = hub(hub_settings, **HUB_ENV).start()
    flaky = SyncPublisher(
        redis.Redis.from_url(f"redis://127.0.0.1:{proxy.port}/0", socket_timeout=1), hub_settings.redis_prefix, 100
    )
    writer = type(ctx)(hub_settings, ctx.engine, flaky)
    console: ConsoleMirror | None = None
    try:
        console = _live_console(h)
        speaker = sample["speakers"]["moscow"][0].id
        proxy.cut()
        missed = _ask(writer, event_id, speaker, 1)  # committed; its events could not be published
        assert flaky.stale_channels >= 2  # moderation and the asker's own channel
        proxy.restore()
        # For a moment after a failure the publisher fails fast, without a network call.
        assert flaky.recently_failed
        wait_until(lambda: not flaky.recently_failed, 5 * SECOND, "the publisher to try again")
        later = _ask(writer, event_id, speaker, 2)
        stream = flaky.client.xrange(flaky.keys.stream(topic(event_id, "moderation")), count=1000)
        types = [f[b"d"] for _, f in stream]
        assert any(STALE.encode() in t for t in types)
        wait_until(lambda: {missed["id"], later["id"]} <= console.view().keys(), 10 * SECOND, "both questions")
        assert "missed_events" in console.resyncs
        assert flaky.stale_channels == 0
    finally:
        if console is not None:
            console.stop_flag.set()
        h.stop()
        proxy.stop()
        server.stop()


def test_slow_consumer_is_closed_with_4408_and_others_get_everything(
    settings_factory, ctx, event_id, moderator_factory
) -> None:
    import socket

    from websockets.sync.client import connect

    from .support import WsClient

    settings = settings_factory(socket_queue_size=8)
    srv = start_server(settings)
    client = moderator_factory(srv)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a phone on a bad link
    raw.connect(("127.0.0.1", int(srv.base.rsplit(":", 1)[1])))
    try:
        with (
            connect(
                f"{srv.ws_base}/ws/moderator",
                sock=raw,
                additional_headers={"Cookie": cookie_header(client)},
                origin=origin_of(f"{srv.ws_base}/ws/moderator"),
                compression=None,
                max_size=2**24,
            ) as slow_ws,
            moderator_ws(srv, client) as fast,
        ):
            slow = WsClient(slow_ws)
            slow.request("hello")
            fast.request("hello")
            pad = "x" * 16_000
            for n in range(600):  # 9.6 MB the slow one does not read (kernel buffers hold up to 4 MB)
                ctx.publisher.publish(event_id, "moderation", "drill.filler", {"n": n, "pad": pad})
                while fast.pump(0.001):  # the fast one reads everything there is
                    pass
            wait_until(
                lambda: (fast.pump(0.05), len([e for e in fast.events if e["type"] == "drill.filler"]))[1] == 600,
                30 * SECOND,
                "every event on the fast console",
            )
            assert [e["payload"]["n"] for e in fast.events if e["type"] == "drill.filler"] == list(range(600))
            with pytest.raises(ConnectionClosed) as closed:
                deadline = time.monotonic() + 30 * SECOND
                while time.monotonic() < deadline:
                    slow.pump(0.1)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
            got = [e["payload"]["n"] for e in slow.events if e["type"] == "drill.filler"]
            assert got == list(range(len(got))) and len(got) < 600  # what it got is in order; then it was cut
    finally:
        client.close()
        srv.stop()


def test_disabled_moderator_loses_the_open_console(server, ctx, moderator) -> None:
    with moderator_ws(server, moderator) as mod:
        assert mod.request("hello")["ok"]
        with ctx.transaction() as (db, _):
            user = db.exec(select(User).where(User.username == "mod1")).one()
            user.disabled = True
            db.add(user)
        with pytest.raises(ConnectionClosed) as closed:
            deadline = time.monotonic() + 15 * SECOND
            while time.monotonic() < deadline:
                mod.pump(0.2)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_logout_ends_the_session_its_copied_cookie_and_its_open_console(server, moderator) -> None:
    cookie = cookie_header(moderator)  # as an attacker who copied it would hold it
    with moderator_ws(server, moderator) as mod:
        assert mod.request("hello")["ok"]
        assert moderator.post("/api/logout").status_code == 200
        with pytest.raises(ConnectionClosed) as closed:
            deadline = time.monotonic() + 15 * SECOND
            while time.monotonic() < deadline:
                mod.pump(0.2)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    copied = httpx.get(server.base + "/api/me", headers={"Cookie": cookie}, timeout=10)
    assert copied.status_code == 401
    with ws_client(server.ws_base + "/ws/moderator", additional_headers={"Cookie": cookie}) as again:
        with pytest.raises(ConnectionClosed) as refused:
            again.pump(5 * SECOND)
        assert refused.value.rcvd is not None and refused.value.rcvd.code == 4401
