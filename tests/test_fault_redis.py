"""Drill: Redis killed (kill -9) and restarted under load, with and without its
append-only file, two hubs sharing it and the database. Must hold: asking goes
on during the outage (acknowledged = stored), nothing acknowledged is lost or
stored twice, and every moderator console converges to the database."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from qa_service.db.models import Question

from .drills import Asker, ConsoleMirror
from .faults import RedisServer, ServiceProcess, hub
from .support import SECOND, cookie_header, login, wait_until

pytestmark = pytest.mark.integration
HUB_ENV = {"QA_QUESTIONS_PER_MINUTE": "100000", "QA_MESSAGES_PER_SECOND": "1000", "QA_BUS_HEARTBEAT_SECONDS": "0.5"}
RESULTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "drills"


def db_versions(ctx: Any, event_id: int) -> dict[int, int]:
    with ctx.read() as db:
        return {q.id: q.version for q in db.exec(select(Question).where(Question.event_id == event_id)) if q.id}


def record(name: str, figures: dict[str, Any]) -> None:
    """Keep the drill's figures (for docs/reliability.md and the closing note)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")


@pytest.mark.parametrize("appendonly", [True, False], ids=["aof", "no-persistence"])
def test_redis_restart_under_load_every_console_converges(
    settings_factory, ctx, event_id, sample, tmp_path, appendonly, db_url
) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=appendonly).start()
    settings = settings_factory(redis_url=server.url)
    hubs: list[ServiceProcess] = [hub(settings, **HUB_ENV).start() for _ in range(2)]
    consoles: list[ConsoleMirror] = []
    askers: list[Asker] = []
    try:
        for h in hubs:
            h.wait_ready()
        http = login(hubs[0].base, "mod1", "moderator-password")
        cookie = cookie_header(http)
        http.close()
        consoles = [ConsoleMirror(h.base.replace("http", "ws") + "/ws/moderator", cookie) for h in hubs]
        speaker = sample["speakers"]["moscow"][0].id
        viewer_urls = [h.base.replace("http", "ws") + "/ws/viewer" for h in hubs]
        askers = [Asker(viewer_urls[i:] + viewer_urls[:i], speaker) for i in range(3)]
        for t in (*consoles, *askers):
            t.start()
        wait_until(lambda: sum(len(a.acked) for a in askers) > 20, 30 * SECOND, "asks before the fault")

        server.kill()
        down_at = time.monotonic()
        time.sleep(3 * SECOND)  # asking goes on while Redis is away
        server.start()
        up_at = time.monotonic()
        time.sleep(2 * SECOND)
        for a in askers:
            a.stop()

        acked = {cid: qid for a in askers for cid, qid in a.acked.items()}
        during = sum(1 for a in askers for t in a.ack_times if down_at < t < up_at)

        def converged() -> bool:
            truth = db_versions(ctx, event_id)
            return all(c.view() == truth for c in consoles)

        wait_until(converged, 30 * SECOND, "every console equal to the database")
        # Recovery: from the restart until each console had its fresh snapshot.
        recovered = [min((t for t in c.resync_times if t > down_at), default=float("inf")) - up_at for c in consoles]
        truth = db_versions(ctx, event_id)
        with ctx.read() as db:
            rows = list(db.exec(select(Question).where(Question.event_id == event_id)))
        by_client = {(q.viewer_id, q.client_id) for q in rows}
        lost = [cid for cid, qid in acked.items() if qid not in truth]
        figures = {
            "appendonly": appendonly,
            "database": db_url.split(":", 1)[0],
            "acknowledged": len(acked),
            "acknowledged_while_redis_down": during,
            "stored": len(rows),
            "lost": len(lost),
            "doubled": len(rows) - len(by_client),
            "unacknowledged_at_stop": sum(len(a.unacked) for a in askers),
            "console_resynced_seconds_after_restart": [round(max(r, 0.0), 2) for r in recovered],
            "console_resyncs": [dict(Counter(c.resyncs)) for c in consoles],
            "error_codes": sorted({code for a in askers for code in a.error_codes}),
        }
        record(f"redis-restart-{'aof' if appendonly else 'no-persistence'}-{figures['database']}", figures)
        assert lost == []
        assert figures["doubled"] == 0
        assert during > 0, "no question was acknowledged while Redis was down"
        assert "server.error" not in figures["error_codes"]
        for h in hubs:
            assert h.alive(), h.output()[-2000:]
    finally:
        for t in (*askers, *consoles):
            t.stop_flag.set()
        for h in hubs:
            h.stop()
        server.stop()


def test_redis_restored_from_an_older_snapshot_starts_a_new_epoch(settings_factory, ctx, event_id, sample, tmp_path):
    """An RDB snapshot (or an AOF that lost its last second) brings back counters older
    than numbers clients already hold: the hub starts a new epoch, so a client resuming
    from such a number gets a snapshot, never a replay of other events under its numbers."""
    import redis

    from qa_service.bus.redis_bus import SyncPublisher
    from qa_service.services import questions

    from .support import ws_client

    server = RedisServer(tmp_path / "redis").start()
    settings = settings_factory(redis_url=server.url)
    h = hub(settings, **HUB_ENV).start()
    client = redis.Redis.from_url(server.url)
    writer = type(ctx)(settings, ctx.engine, SyncPublisher(client, settings.redis_prefix, 2000))
    speaker = sample["speakers"]["moscow"][0].id

    def ask(n: int) -> None:
        payload = {"client_id": f"epoch-{n:04d}", "speaker_id": speaker, "text": f"Epoch {n}?", "language": "en"}
        questions.ask(writer, event_id, "viewer-epoch-0001", payload)

    try:
        h.wait_ready("/readyz")
        ask(1)
        client.save()  # the snapshot Redis will come back with
        for n in range(2, 5):
            ask(n)
        with ws_client(
            h.base.replace("http", "ws") + "/ws/moderator", additional_headers={"Cookie": staff_cookie(h.base)}
        ) as m:
            m.request("hello")
            m.drain(0.5 * SECOND)
            held = dict(m.last_seq)  # numbers this console holds
        server.kill()
        server.start()  # loads the older snapshot: counters go back
        wait_until(lambda: _ready(h), 30 * SECOND, "the hub back on the bus")
        for n in range(5, 12):  # enough to push the channel past the numbers the console holds
            ask(n)
        with ws_client(
            h.base.replace("http", "ws") + "/ws/moderator", additional_headers={"Cookie": staff_cookie(h.base)}
        ) as m:
            reply = m.request("hello", {"resume": held})
            assert reply["payload"]["start"] == "snapshot", "old numbers replayed other events"
            m.drain(0.5 * SECOND)
            assert m.snapshots and len(m.snapshots[-1]["payload"]["questions"]) == len(db_versions(ctx, event_id))
            assert m.snapshots[-1]["seq"]["moderation"] > held["moderation"]  # a new epoch, above the old numbers
    finally:
        client.close()
        h.stop()
        server.stop()


def staff_cookie(base: str) -> str:
    """The session cookie of mod1 logged in at ``base``."""
    http = login(base, "mod1", "moderator-password")
    try:
        return cookie_header(http)
    finally:
        http.close()


def _ready(h: ServiceProcess) -> bool:
    import httpx

    try:
        return httpx.get(h.base + "/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
