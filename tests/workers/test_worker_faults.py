"""Fault drills for translation workers: real `qa-service worker` processes, a
Redis server of the test's own (killed with kill -9 and restarted, with and
without its append-only file), PostgreSQL cut off through a TCP proxy, workers
killed mid-batch, models imported while a worker runs. Each drill prints its
figures (lost, doubled, stuck pending, recovery time) as a `DRILL` line (-s)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue
from sqlmodel import col, func, select

from qa_service.bus import channels
from qa_service.bus.redis_bus import Keys, SyncPublisher, topic
from qa_service.db.engine import make_engine
from qa_service.db.models import Question, Translation
from qa_service.services import questions, schedule
from qa_service.services.context import Context
from qa_service.settings import Settings
from workers.heartbeat import worker_alive
from workers.inflight import Keys as InflightKeys
from workers.jobs import enqueue
from workers.models import TEST_MODELS
from workers.translate import pending_ids

from ..faults import RedisServer, TcpProxy, postgres_target, through_proxy
from ..support import SECOND, wait_until
from ..test_fault_redis import record
from .conftest import ask, phrases, question, translations, worker_env

pytestmark = pytest.mark.integration

# Sweep every second and let a dead worker's leases lapse after 3 s, so drills stay short.
FAST = {"QA_WORKER_SWEEP_SECONDS": "1", "QA_WORKER_LEASE_SECONDS": "3", "QA_REDIS_TIMEOUT_SECONDS": "2"}


def drill(name: str, **figures: Any) -> None:
    """Keep the drill's figures beside the hub drills' (test-artifacts/drills/)."""
    print(f"\nDRILL {name}: " + " ".join(f"{k}={v}" for k, v in figures.items()))
    record("worker-" + "-".join(name.replace("/", " ").split()), figures)


@pytest.fixture
def context_for() -> Iterator[Callable[[Settings], Context]]:
    """A service context on ``settings`` that queues translations after each commit, as a hub does
    (a failed enqueue is left to the worker sweep)."""
    made: list[Context] = []

    def make(settings: Settings) -> Context:
        client = redis.Redis.from_url(settings.redis_url or "", socket_connect_timeout=1, socket_timeout=2)
        ctx = Context(
            settings,
            make_engine(settings.effective_database_url),
            SyncPublisher(client, settings.redis_prefix, settings.history_size),
        )
        queue = Queue(settings.queue_name, connection=client)

        def hook(qid: int) -> None:
            try:
                enqueue(queue, qid)
            except redis.RedisError:  # as the hub does: a worker sweep queues it later
                pass

        ctx.on_question_created.append(hook)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.publisher.client.close()
        ctx.engine.dispose()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[[bool], RedisServer]]:
    servers: list[RedisServer] = []

    def start(appendonly: bool) -> RedisServer:
        servers.append(RedisServer(tmp_path / "own-redis", appendonly=appendonly).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def speaker(sample: dict[str, Any], studio: str = "moscow") -> int:
    """Moscow: Dmitry Orlov reads Russian only, like the moderators and the host."""
    return int(sample["speakers"][studio][1].id)


def settle(ctx: Context, ids: list[int], timeout: float) -> float:
    """Wait until none of ``ids`` is pending; returns how long that took."""
    started = time.monotonic()
    wait_until(lambda: not set(ids) & set(pending_ids(ctx)), timeout, f"{len(ids)} questions to leave 'pending'")
    return time.monotonic() - started


def outcome(ctx: Context, expected: dict[int, str]) -> dict[str, int]:
    """Lost (asked, not stored), doubled (two rows for one translation), stuck, wrong."""
    with ctx.read() as db:
        stored = set(db.exec(select(Question.id).where(col(Question.id).in_(list(expected)))))
        rows = Counter(
            (t.question_id, t.language)
            for t in db.exec(select(Translation).where(col(Translation.question_id).in_(list(expected))))
        )
    wrong = sum(1 for qid, ru in expected.items() if (t := translations(ctx, qid).get("ru")) is None or t.text != ru)
    return {
        "lost": len(set(expected) - stored),
        "doubled": sum(n - 1 for n in rows.values() if n > 1),
        "stuck": len(set(expected) & set(pending_ids(ctx))),
        "wrong": wrong,
    }


def moderation_events(settings: Settings, event_id: int, qid: int, client: redis.Redis) -> list[dict[str, Any]]:
    stream = Keys(settings.redis_prefix).stream(topic(event_id, channels.MODERATION))
    events = [json.loads(fields[b"d"]) for _id, fields in client.xrange(stream)]
    return [e for e in events if e["payload"].get("id") == qid]


@pytest.mark.parametrize("appendonly", [True, False], ids=["aof", "no-aof"])
def test_worker_survives_redis_kill_9_and_restart(
    appendonly, own_redis, settings_factory, argos_dir, event_id, sample, start_worker, context_for
) -> None:
    server = own_redis(appendonly)
    s = settings_factory(argos_dir=argos_dir, redis_url=server.url)
    ctx = context_for(s)
    worker = start_worker(settings=s, QA_WORKER_JOB_DELAY="0.5", **FAST)  # jobs in flight when Redis dies
    wait_until(lambda: worker_alive(s), 60 * SECOND, "the worker's heartbeat")
    rows = iter(phrases())
    expected: dict[int, str] = {}

    def ask_some(n: int) -> list[int]:
        ids = []
        for row in (next(rows) for _ in range(n)):
            ids.append(ask(ctx, event_id, speaker(sample), row["en"], "en"))
            expected[ids[-1]] = row["ru"]
        return ids

    settle(ctx, ask_some(4), 60 * SECOND)
    ask_some(4)  # queued, some in flight when Redis dies
    server.kill()
    ask_some(4)  # stored while Redis is down: their enqueue fails
    time.sleep(2 * SECOND)
    server.start()
    restarted = time.monotonic()
    ask_some(4)
    settle(ctx, list(expected), 60 * SECOND)
    recovery = time.monotonic() - restarted
    figures = outcome(ctx, expected)
    drill(f"redis kill -9 + restart ({'aof' if appendonly else 'no aof'})", **figures, recovery_s=f"{recovery:.1f}")
    assert figures == {"lost": 0, "doubled": 0, "stuck": 0, "wrong": 0}
    assert worker.proc.poll() is None, worker.output()[-3000:]
    wait_until(lambda: worker_alive(s), 10 * SECOND, "the worker's heartbeat after the restart")


def test_two_kill_9s_within_a_minute_while_jobs_are_claimed(
    own_redis, settings_factory, argos_dir, event_id, sample, start_worker, context_for
) -> None:
    server = own_redis(False)
    s = settings_factory(argos_dir=argos_dir, redis_url=server.url)
    ctx = context_for(s)
    client = redis.Redis.from_url(server.url)
    rows = phrases()[:6]
    expected = {ask(ctx, event_id, speaker(sample), r["en"], "en"): r["ru"] for r in rows}
    keys = InflightKeys(s.redis_prefix)

    def holders() -> list[int | None]:
        """The process id of the worker holding each question's lease."""
        return [int(v.decode().split(":")[1]) if v else None for v in client.mget([keys.lease(q) for q in expected])]

    first_kill = None
    for _ in range(2):
        # Each job sleeps 30 s between translating and storing: killed with a batch claimed.
        slow = start_worker(settings=s, QA_WORKER_JOB_DELAY="30", **FAST)
        wait_until(lambda w=slow: holders().count(w.proc.pid) >= 2, 60 * SECOND, "a batch to be claimed")
        os.kill(slow.proc.pid, signal.SIGKILL)
        slow.wait(10)
        first_kill = first_kill or time.monotonic()
    assert time.monotonic() - first_kill < 60 * SECOND, "the drill needs two kills within a minute"
    assert set(pending_ids(ctx)) == set(expected)
    start_worker(settings=s, **FAST)
    recovery = settle(ctx, list(expected), 60 * SECOND)
    figures = outcome(ctx, expected)
    drill("worker kill -9 twice within a minute", **figures, recovery_s=f"{recovery:.1f}")
    assert figures == {"lost": 0, "doubled": 0, "stuck": 0, "wrong": 0}
    assert all(question(ctx, q).translation_state == "done" for q in expected)  # 3 attempts of 4
    client.close()


def test_a_route_without_a_model_ends_untranslated_at_once_and_quietly(
    settings_factory, argos_dir, event_id, sample, start_worker, context_for
) -> None:
    s = settings_factory(argos_dir=argos_dir)
    ctx = context_for(s)
    worker = start_worker(settings=s, **FAST)
    tashkent = sample["segments"][sample["studios"]["tashkent"].id]
    schedule.set_status(ctx, event_id, tashkent.id, "live", "mod1")
    row = phrases()[0]
    # Chinese to a Russian reader: no zh model at all.
    zh = ask(ctx, event_id, speaker(sample), "新工厂需要多长时间建成？", "zh")
    # English to Dilshod Karimov (reads uz, then ru) in Tashkent (host reads uz first): ru can be made, uz not.
    en = ask(ctx, event_id, speaker(sample, "tashkent"), row["en"], "en")
    wait_until(
        lambda: {question(ctx, q).translation_state for q in (zh, en)} == {"untranslated"}, 30 * SECOND, "untranslated"
    )
    assert question(ctx, zh).translation_error == "no_model:zh>ru;zh"
    assert question(ctx, en).translation_error == "no_model:en>uz;uz"
    assert {k: t.text for k, t in translations(ctx, en).items()} == {"ru": row["ru"]}
    time.sleep(3 * SECOND)  # three sweeps: nothing is retried, nothing announced again
    updates = {}
    for qid in (zh, en):
        kinds = [e["type"] for e in moderation_events(s, event_id, qid, ctx.publisher.client)]
        assert kinds == ["question.created", "question.updated"], kinds
        updates[qid] = kinds.count("question.updated")
    assert not ctx.publisher.client.exists(*[InflightKeys(s.redis_prefix).attempts(q) for q in (zh, en)])
    drill("no model for a route", question_updated_events_per_question=sorted(updates.values()))
    assert worker.proc.poll() is None


def test_a_model_imported_into_a_running_worker_is_used_without_restart(
    settings_factory, tmp_path, event_id, sample, start_worker, context_for
) -> None:
    s = settings_factory(argos_dir=tmp_path / "argos-live")

    def models_import(name: str) -> None:
        path = str(TEST_MODELS / f"translate-{name}-test.argosmodel")
        cmd = [sys.executable, "-m", "qa_service.cli", "models", "import", path]
        subprocess.run(cmd, env=worker_env(s), check=True, timeout=120, capture_output=True)

    models_import("en_ru")
    ctx = context_for(s)
    worker = start_worker(settings=s, **FAST)
    rows = phrases()
    before = ask(ctx, event_id, speaker(sample), rows[1]["es"], "es")
    wait_until(lambda: question(ctx, before).translation_state == "untranslated", 60 * SECOND, "untranslated")
    assert question(ctx, before).translation_error == "no_model:es>ru;es"
    models_import("es_en")  # es→en→ru through English from now on
    after = ask(ctx, event_id, speaker(sample), rows[2]["es"], "es")
    wait_until(lambda: question(ctx, after).translation_state == "done", 30 * SECOND, "the new model in use")
    assert translations(ctx, after)["ru"].text == rows[2]["ru"]
    q = question(ctx, before)
    questions.retranslate(ctx, event_id, before, "mod1", expected_version=q.version)
    wait_until(lambda: question(ctx, before).translation_state == "done", 30 * SECOND, "the re-translation")
    assert translations(ctx, before)["ru"].text == rows[1]["ru"]
    assert worker.proc.poll() is None  # the same process all along


def test_a_retranslate_during_a_batch_is_not_overwritten_by_the_old_result(
    settings_factory, argos_dir, event_id, sample, start_worker, context_for
) -> None:
    s = settings_factory(argos_dir=argos_dir)
    ctx = context_for(s)
    row = phrases()[10]
    qid = ask(ctx, event_id, speaker(sample), row["es"], "en")  # declared English, written Spanish
    worker = start_worker("--burst", settings=s, QA_WORKER_JOB_DELAY="3")
    # The job translated (its result is cached) and sleeps before storing: a moderator corrects the language now.
    wait_until(lambda: ctx.publisher.client.keys(f"{s.redis_prefix}:tcache:*"), 60 * SECOND, "the first translation")
    fixed = questions.retranslate(
        ctx, event_id, qid, "mod1", expected_version=question(ctx, qid).version, language="es"
    )
    assert fixed["translation_state"] == "pending"
    assert worker.wait(120 * SECOND) == 0, worker.output()
    q = question(ctx, qid)
    assert (q.language, q.translation_state) == ("es", "done")
    assert translations(ctx, qid)["ru"].text == row["ru"]  # es→en→ru, not the English model's reading
    announced = [e["payload"] for e in moderation_events(s, event_id, qid, ctx.publisher.client)]
    done = [p["translations"]["ru"]["text"] for p in announced if p["translation_state"] == "done"]
    assert done == [row["ru"]]  # the stale result was never stored, never announced


@pytest.mark.postgres
def test_worker_survives_the_database_cut_off(
    db_url, settings_factory, argos_dir, event_id, sample, start_worker, context_for
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("cutting a database off needs one behind a TCP port")
    proxy = TcpProxy(*postgres_target(db_url)).start()
    try:
        direct = settings_factory(argos_dir=argos_dir)
        cut_off = settings_factory(argos_dir=argos_dir, database_url=through_proxy(db_url, proxy))
        ctx = context_for(direct)  # the hub's side keeps its database
        worker = start_worker(settings=cut_off, **FAST)
        wait_until(lambda: worker_alive(direct), 60 * SECOND, "the worker's heartbeat")
        rows = iter(phrases())
        expected: dict[int, str] = {}
        for r in (next(rows) for _ in range(3)):
            expected[ask(ctx, event_id, speaker(sample), r["en"], "en")] = r["ru"]
        settle(ctx, list(expected), 60 * SECOND)
        proxy.cut()
        for r in (next(rows) for _ in range(3)):
            expected[ask(ctx, event_id, speaker(sample), r["en"], "en")] = r["ru"]
        wait_until(lambda: "database or Redis away" in worker.output(), 30 * SECOND, "the worker to meet the cut")
        time.sleep(2 * SECOND)
        assert worker_alive(direct) and worker.proc.poll() is None
        proxy.restore()
        restored = time.monotonic()
        settle(ctx, list(expected), 60 * SECOND)
        recovery = time.monotonic() - restored
        figures = outcome(ctx, expected)
        drill("database cut off (PostgreSQL via proxy)", **figures, recovery_s=f"{recovery:.1f}")
        assert figures == {"lost": 0, "doubled": 0, "stuck": 0, "wrong": 0}
        with ctx.read() as db:  # nothing was given up for the outage
            assert (
                db.exec(
                    select(func.count()).select_from(Question).where(Question.translation_state == "untranslated")
                ).one()
                == 0
            )
        assert worker.proc.poll() is None
    finally:
        proxy.stop()
