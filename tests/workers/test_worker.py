"""Real RQ workers (`qa-service worker` processes) on real Redis and SQL."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest
import redis
from rq import Queue
from rq.registry import StartedJobRegistry
from sqlmodel import select

from qa_service.db.models import Translation
from qa_service.services import questions, schedule
from qa_service.services.context import Context
from qa_service.settings import Settings
from workers.heartbeat import heartbeat_age
from workers.jobs import enqueue

from ..support import SECOND, wait_until
from .conftest import ask, phrases, question, translations

pytestmark = pytest.mark.integration


@pytest.fixture
def wctx(ctx: Context, worker_settings: Settings) -> Context:
    """The test's service context, enqueueing translations as the hub does."""
    ctx.settings = worker_settings
    queue = Queue(worker_settings.queue_name, connection=ctx.publisher.client)
    ctx.on_question_created.append(lambda qid: enqueue(queue, qid))
    return ctx


def _queue(settings: Settings) -> Queue:
    return Queue(settings.queue_name, connection=redis.Redis.from_url(settings.redis_url or ""))


def test_burst_worker_translates_into_speaker_and_moderator_languages(wctx, event_id, sample, start_worker) -> None:
    row = phrases()[0]
    # Dmitry Orlov reads Russian; the moderators work in Russian; the Moscow host reads ru first.
    qid = ask(wctx, event_id, sample["speakers"]["moscow"][1].id, row["en"], "en")
    # Berlin goes live by hand: Jonas Vogel reads only German; es→de and es→ru pivot through English.
    berlin = sample["segments"][sample["studios"]["berlin"].id]
    schedule.set_status(wctx, event_id, berlin.id, "live", "mod1")
    qid2 = ask(wctx, event_id, sample["speakers"]["berlin"][1].id, row["es"], "es")
    worker = start_worker("--burst")
    assert worker.wait(120 * SECOND) == 0, worker.output()
    t = translations(wctx, qid)
    assert set(t) == {"ru"}
    assert t["ru"].text == row["ru"] and t["ru"].engine == "argos"
    assert t["ru"].model_version.startswith("en-ru@0.2-test#")
    assert question(wctx, qid).translation_state == "done"
    t2 = translations(wctx, qid2)
    assert {k: v.text for k, v in t2.items()} == {"de": row["de"], "ru": row["ru"]}
    assert t2["de"].model_version.count("@") == 2  # es→en + en→de
    # One CTranslate2 batch served both: the first job claimed the second.
    assert "batch" in worker.output() or question(wctx, qid2).translation_state == "done"


def test_waiting_questions_are_batched_into_one_job(wctx, event_id, sample, start_worker, worker_settings) -> None:
    rows = phrases()[:6]
    ids = [ask(wctx, event_id, sample["speakers"]["moscow"][1].id, r["en"], "en") for r in rows]
    first_job = _queue(worker_settings).get_job_ids()[0]
    worker = start_worker("--burst")
    assert worker.wait(120 * SECOND) == 0, worker.output()
    from rq.job import Job

    result = Job.fetch(first_job, connection=redis.Redis.from_url(worker_settings.redis_url or "")).return_value()
    assert result == {"translated": ids, "batch": 6}
    assert [translations(wctx, i)["ru"].text for i in ids] == [r["ru"] for r in rows]


def test_missing_pair_ends_untranslated_and_stays_approvable(wctx, event_id, sample, start_worker) -> None:
    qid = ask(wctx, event_id, sample["speakers"]["moscow"][1].id, "ما هي خطط التصدير؟", "ar")
    worker = start_worker("--burst")  # final at the first attempt: nothing to wait for
    assert worker.wait(120 * SECOND) == 0, worker.output()
    q = question(wctx, qid)
    assert q.translation_state == "untranslated"
    assert q.translation_error == "no_model:ar>ru;ar"
    approved = questions.moderate(wctx, event_id, qid, "approve", "mod1", expected_version=q.version)
    assert approved["status"] == "queued" and approved["translation_state"] == "untranslated"
    worker.stop()


def test_kill_9_mid_job_and_the_translation_still_arrives(
    wctx, event_id, sample, start_worker, worker_settings
) -> None:
    row = phrases()[3]
    qid = ask(wctx, event_id, sample["speakers"]["moscow"][1].id, row["en"], "en")
    slow = start_worker(QA_WORKER_JOB_DELAY="30")
    registry = StartedJobRegistry(queue=_queue(worker_settings))
    wait_until(lambda: registry.count == 1, 60 * SECOND, "the job to start")
    os.kill(slow.proc.pid, signal.SIGKILL)
    slow.wait(10)
    assert translations(wctx, qid) == {}
    fresh = start_worker()
    wait_until(lambda: "ru" in translations(wctx, qid), 60 * SECOND, "the translation after a restart")
    assert translations(wctx, qid)["ru"].text == row["ru"]
    fresh.stop()


def test_a_moderators_edit_survives_a_late_machine_result(
    wctx, event_id, sample, start_worker, worker_settings
) -> None:
    row = phrases()[5]
    qid = ask(wctx, event_id, sample["speakers"]["moscow"][1].id, row["en"], "en")
    worker = start_worker("--burst", QA_WORKER_JOB_DELAY="3")
    wait_until(lambda: StartedJobRegistry(queue=_queue(worker_settings)).count == 1, 60 * SECOND, "job start")
    questions.edit_translation(wctx, event_id, qid, "ru", "Сколько стоит одна тонна стали?", "mod1", expected_version=1)
    assert worker.wait(120 * SECOND) == 0, worker.output()
    t = translations(wctx, qid)["ru"]
    assert (t.text, t.engine, t.edited_by) == ("Сколько стоит одна тонна стали?", "human", "mod1")
    assert question(wctx, qid).translation_state == "done"


def test_language_disagreement_is_flagged_not_applied(wctx, event_id, sample, start_worker) -> None:
    text = "How much energy does the new production line save every year?"
    qid = ask(wctx, event_id, sample["speakers"]["moscow"][1].id, text, "de")  # declared German, written English
    short = ask(wctx, event_id, sample["speakers"]["moscow"][1].id, "Hello?", "es")  # too short to judge
    worker = start_worker("--burst")
    assert worker.wait(120 * SECOND) == 0, worker.output()
    q = question(wctx, qid)
    assert q.detected_language == "en" and q.language == "de"
    assert question(wctx, short).detected_language is None


def test_translations_reach_moderators_live(server, worker_settings, event_id, sample, moderator, start_worker) -> None:
    from ..hub.test_fanout import moderator_ws
    from ..support import ws_client

    assert server.server.config.app.state.settings.queue_name == worker_settings.queue_name
    worker = start_worker()
    wait_until(
        lambda: "Listening on" in worker.output() or "listening" in worker.output().lower(), 60 * SECOND, "worker"
    )
    row = phrases()[9]
    with ws_client(f"{server.ws_base}/ws/viewer") as viewer, moderator_ws(server, moderator) as mod:
        viewer.request("hello")
        mod.request("hello")
        asked = time.monotonic()
        reply = viewer.request(
            "question.ask",
            {
                "client_id": uuid.uuid4().hex,
                "speaker_id": sample["speakers"]["moscow"][1].id,
                "text": row["en"],
                "language": "en",
            },
        )
        qid = reply["payload"]["question"]["id"]
        created = mod.wait_event(lambda e: e["type"] == "question.created" and e["payload"]["id"] == qid)
        assert created["payload"]["translation_state"] == "pending"
        done = mod.wait_event(
            lambda e: e["payload"].get("id") == qid and e["payload"].get("translation_state") == "done"
        )
        assert done["payload"]["translations"]["ru"]["text"] == row["ru"]
        assert time.monotonic() - asked < 1.0 * SECOND * 3
    worker.stop()


def test_moderators_are_told_a_test_model_is_in_use(server, worker_settings, moderator, start_worker) -> None:
    worker = start_worker("--burst")
    assert worker.wait(120 * SECOND) == 0, worker.output()
    snap = moderator.get("/api/moderation/snapshot").json()
    assert snap["translation"]["test_model"] is True
    assert "en-ru" in snap["translation"]["pairs"] and "models install" in snap["translation"]["hint"]


def test_retranslate_from_the_detected_language(wctx, event_id, sample, start_worker) -> None:
    row = phrases()[10]
    qid = ask(wctx, event_id, sample["speakers"]["moscow"][1].id, row["es"], "en")  # declared English, written Spanish
    worker = start_worker("--burst")
    assert worker.wait(120 * SECOND) == 0, worker.output()
    q = question(wctx, qid)
    assert q.detected_language == "es"
    assert translations(wctx, qid)["ru"].text != row["ru"]  # garbage: the wrong model read it
    fixed = questions.retranslate(wctx, event_id, qid, "mod1", expected_version=q.version, language="es")
    assert fixed["language"] == "es" and fixed["translation_state"] == "pending" and fixed["translations"] == {}
    worker = start_worker("--burst")
    assert worker.wait(120 * SECOND) == 0, worker.output()
    assert translations(wctx, qid)["ru"].text == row["ru"]  # es→en→ru now
    assert question(wctx, qid).detected_language is None


def test_health_reports_a_running_worker(worker_settings, start_worker) -> None:
    import subprocess
    import sys

    from ..support import free_port
    from .conftest import worker_env

    def health() -> int:
        env = worker_env(worker_settings, QA_PORT=str(free_port()))
        return subprocess.run([sys.executable, "-m", "qa_service.cli", "health"], env=env, timeout=60).returncode

    assert health() == 1 and heartbeat_age(worker_settings) is None
    worker = start_worker()
    wait_until(lambda: health() == 0, 60 * SECOND, "the worker's heartbeat")
    age = heartbeat_age(worker_settings)
    assert age is not None and age <= worker_settings.worker_lease_seconds
    worker.stop()
    assert heartbeat_age(worker_settings) is None  # a worker that stops cleanly says so at once
    assert health() == 1


def test_two_workers_share_the_queue_and_translate_each_question_once(wctx, event_id, sample, start_worker) -> None:
    rows = phrases()
    workers = [start_worker(), start_worker()]
    ids = [ask(wctx, event_id, sample["speakers"]["moscow"][1].id, r["en"], "en") for r in rows]
    wait_until(lambda: all(question(wctx, i).translation_state == "done" for i in ids), 60 * SECOND, "all translated")
    with wctx.transaction() as (db, _):
        all_rows = db.exec(select(Translation)).all()
    assert sorted(t.question_id for t in all_rows) == sorted(ids)  # one row each, no duplicates
    assert {t.question_id: t.text for t in all_rows} == {i: r["ru"] for i, r in zip(ids, rows, strict=True)}
    for w in workers:
        w.stop()


def test_a_job_that_keeps_timing_out_ends_untranslated(ctx, worker_settings, event_id, sample, start_worker) -> None:
    ctx.settings = worker_settings
    queue = _queue(worker_settings)
    ctx.on_question_created.append(lambda qid: enqueue(queue, qid, timeout=1))
    qid = ask(ctx, event_id, sample["speakers"]["moscow"][1].id, phrases()[2]["en"], "en")
    # Every attempt outlives its 1 s timeout: tried 3 times, retried after 1, 3, 10 s.
    worker = start_worker(QA_WORKER_JOB_DELAY="3", QA_TRANSLATE_JOB_TIMEOUT="1", QA_TRANSLATE_MAX_ATTEMPTS="3")
    wait_until(lambda: question(ctx, qid).translation_state == "untranslated", 90 * SECOND, "untranslated")
    assert question(ctx, qid).translation_error == "engine_failed"
    assert translations(ctx, qid) == {}
    worker.stop()
