"""Invariants the database enforces: one question on air per studio (an index and the
studio lock), undo along the life cycle, versioned full-state events. Each test runs
on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from qa_service.db.models import Studio
from qa_service.domain.errors import Conflict, DomainError
from qa_service.services import questions, schedule, snapshots

from ..support import SECOND, wait_until
from .support import ask, on_air_counts, queued, statuses, stream

pytestmark = pytest.mark.integration


def _race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at once, one thread (and so one session) each; results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait(timeout=10 * SECOND)
        try:
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30 * SECOND)
    return results


def test_concurrent_on_air_in_one_studio_leaves_one_on_air(ctx, event_id, sample) -> None:
    speaker, studio = sample["speakers"]["moscow"][0].id, sample["studios"]["moscow"].id
    for _ in range(4):
        q1, q2 = queued(ctx, event_id, speaker, 2)
        results = _race(
            lambda q=q1: questions.moderate(ctx, event_id, q, "on_air", "host", expected_version=None),
            lambda q=q2: questions.moderate(ctx, event_id, q, "on_air", "host", expected_version=None),
        )
        # The studio lock serialises them: both succeed, the second answering the first
        # (without the lock the index would still hold, but one would fail with a Conflict).
        assert all(isinstance(r, dict) for r in results), results
        now = statuses(ctx, studio)
        assert on_air_counts(ctx) == {studio: 1}
        assert sorted([now[q1], now[q2]]) == ["answered", "on_air"]


def test_on_air_now_of_approved_questions_racing_leaves_one_on_air(ctx, event_id, sample) -> None:
    speaker, studio = sample["speakers"]["moscow"][0].id, sample["studios"]["moscow"].id
    q1, q2 = (ask(ctx, event_id, speaker) for _ in range(2))
    for qid in (q1, q2):
        questions.moderate(ctx, event_id, qid, "approve", "mod1", expected_version=1, enqueue=False)
    with pytest.raises(Conflict) as refused:  # a host (hub/endpoints.py: host.on_air) takes only queued ones
        questions.moderate(ctx, event_id, q1, "on_air", "host", expected_version=2)
    assert refused.value.code == "question.illegal_transition"
    results = _race(
        *[
            lambda q=q: questions.moderate(ctx, event_id, q, "on_air", "mod1", expected_version=2, from_approved=True)
            for q in (q1, q2)
        ]
    )
    assert all(isinstance(r, dict) for r in results), results
    now = statuses(ctx, studio)
    assert on_air_counts(ctx) == {studio: 1}
    assert sorted([now[q1], now[q2]]) == ["answered", "on_air"]


def test_two_hosts_pressing_on_air_on_the_same_question_one_wins(ctx, event_id, sample) -> None:
    speaker, studio = sample["speakers"]["moscow"][0].id, sample["studios"]["moscow"].id
    (qid,) = queued(ctx, event_id, speaker, 1)
    results = _race(*[lambda: questions.moderate(ctx, event_id, qid, "on_air", "host", expected_version=3)] * 2)
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "dict"]
    loser = next(r for r in results if isinstance(r, Conflict))
    assert loser.code == "question.stale_version"
    assert on_air_counts(ctx) == {studio: 1}


def test_the_index_refuses_a_second_on_air_row_written_with_sql(ctx, event_id, sample) -> None:
    moscow = queued(ctx, event_id, sample["speakers"]["moscow"][0].id, 2)
    set_on_air = sa.text("UPDATE question SET status = 'on_air' WHERE id = :id")
    with ctx.engine.begin() as conn:
        conn.execute(set_on_air, {"id": moscow[0]})
    with pytest.raises(sa.exc.IntegrityError), ctx.engine.begin() as conn:
        conn.execute(set_on_air, {"id": moscow[1]})
    with ctx.engine.begin() as conn:  # answered rows, and other studios, are not limited
        conn.execute(sa.text("UPDATE question SET status = 'answered' WHERE id = :id"), {"id": moscow[0]})
        conn.execute(set_on_air, {"id": moscow[1]})
    assert on_air_counts(ctx) == {sample["studios"]["moscow"].id: 1}


def test_a_clash_with_a_writer_that_skips_the_lock_is_a_conflict(ctx, event_id, sample) -> None:
    """A transaction that puts a question on air without the studio lock (here: raw SQL)
    still cannot make two: PostgreSQL's index refuses the second and the service says
    studio.on_air_taken; SQLite waits for the writer and then answers its question."""
    studio = sample["studios"]["moscow"].id
    q1, q2 = queued(ctx, event_id, sample["speakers"]["moscow"][0].id, 2)
    postgres = ctx.engine.dialect.name == "postgresql"
    outcome: list[Any] = []

    def on_air() -> None:
        try:
            outcome.append(questions.moderate(ctx, event_id, q2, "on_air", "host", expected_version=None))
        except DomainError as exc:
            outcome.append(exc)

    with ctx.engine.connect() as raw:
        raw.execute(sa.text("UPDATE question SET status = 'on_air' WHERE id = :id"), {"id": q1})
        worker = threading.Thread(target=on_air)
        worker.start()
        if postgres:  # let the service reach the index, where it waits for the raw writer
            wait_until(lambda: _waiting_on_locks(ctx) > 0, 10 * SECOND, "the service to wait on the index")
        raw.commit()
        worker.join(30 * SECOND)
    if postgres:
        assert isinstance(outcome[0], Conflict) and outcome[0].code == "studio.on_air_taken"
        assert statuses(ctx, studio)[q1] == "on_air" and statuses(ctx, studio)[q2] == "queued"
    else:
        assert isinstance(outcome[0], dict) and outcome[0]["status"] == "on_air"
        assert statuses(ctx, studio)[q1] == "answered"
    assert on_air_counts(ctx) == {studio: 1}


def _waiting_on_locks(ctx: Any) -> int:
    with ctx.engine.connect() as conn:
        # Only this test's database: other runs may wait on locks of their own meanwhile.
        sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        return int(conn.execute(sa.text(sql)).scalar_one())


def test_undo_never_puts_a_second_question_on_air(ctx, event_id, sample) -> None:
    """Host puts q1 on air, then q2 (q1 answered); undoing q1's answer is refused
    while q2 is on air, and works once the studio is off air."""
    studio = sample["studios"]["moscow"].id
    q1, q2 = queued(ctx, event_id, sample["speakers"]["moscow"][0].id, 2)
    questions.moderate(ctx, event_id, q1, "on_air", "host", expected_version=None)
    questions.moderate(ctx, event_id, q2, "on_air", "host", expected_version=None)
    assert statuses(ctx, studio) == {q1: "answered", q2: "on_air"}
    with pytest.raises(Conflict) as refused:
        questions.undo(ctx, event_id, q1, "mod1", expected_version=None)
    assert refused.value.code == "studio.on_air_taken" and refused.value.details["on_air"] == q2
    assert statuses(ctx, studio) == {q1: "answered", q2: "on_air"}
    back = questions.undo(ctx, event_id, q2, "mod1", expected_version=None)  # q2 off air: queued again
    assert back["status"] == "queued"
    restored = questions.undo(ctx, event_id, q1, "mod1", expected_version=None)
    assert restored["status"] == "on_air"
    assert statuses(ctx, studio) == {q1: "on_air", q2: "queued"}
    assert on_air_counts(ctx) == {studio: 1}


def test_queue_order_versions_rise_in_publish_order_and_match_the_snapshots(ctx, event_id, sample) -> None:
    studio = sample["studios"]["moscow"].id
    ids = queued(ctx, event_id, sample["speakers"]["moscow"][0].id, 3)
    questions.move(ctx, event_id, studio, ids[2], 0, "mod1")
    questions.reorder(ctx, event_id, studio, [ids[0], ids[1], ids[2]], "mod2")
    questions.moderate(ctx, event_id, ids[0], "on_air", "host", expected_version=None)
    questions.moderate(ctx, event_id, ids[0], "skip", "host", expected_version=None)
    questions.moderate(ctx, event_id, ids[1], "reject", "mod1", expected_version=None, reason="off_topic")
    questions.undo(ctx, event_id, ids[1], "mod1", expected_version=None)
    with ctx.read() as db:
        version = db.get(Studio, studio).queue_version
    for channel in (f"studio:{studio}", "moderation"):
        orders = stream(ctx, event_id, channel, "queue.order")
        versions = [o["version"] for o in orders]
        assert versions == list(range(1, version + 1)) and len(versions) == 9, versions
    assert orders[-1]["order"] == [q.id for q in _queue(ctx, studio)]
    assert snapshots.host(ctx, event_id, studio)["queue_version"] == version
    assert snapshots.moderator(ctx, event_id)["queue_versions"][str(studio)] == version
    with pytest.raises(Conflict) as stale:
        questions.reorder(ctx, event_id, studio, orders[-1]["order"], "mod2", expected_version=version - 1)
    assert stale.value.code == "queue.stale_version" and stale.value.details["current_version"] == version


def test_concurrent_queue_changes_get_distinct_versions_and_the_newest_is_the_truth(ctx, event_id, sample) -> None:
    """Published after commit, two orders may reach the bus in either order; a client
    that keeps only a higher version ends with the database's order."""
    studio = sample["studios"]["moscow"].id
    ids = queued(ctx, event_id, sample["speakers"]["moscow"][0].id, 4)
    results = _race(*[lambda i=i: questions.move(ctx, event_id, studio, ids[i], 0, f"mod{i}") for i in range(4)])
    assert all(isinstance(r, list) for r in results), results
    orders = stream(ctx, event_id, f"studio:{studio}", "queue.order")
    versions = [o["version"] for o in orders]
    assert sorted(versions) == list(range(1, len(ids) + 5))  # 4 enqueues, then 4 moves
    held: dict[str, Any] = {"version": 0, "order": None}
    for o in orders:  # what console.js and host.js do
        if o["version"] > held["version"]:
            held = o
    assert held["order"] == [q.id for q in _queue(ctx, studio)]


def _queue(ctx: Any, studio_id: int) -> list[Any]:
    with ctx.read() as db:
        return questions.queued_in(db, studio_id)


def test_segment_versions_rise_in_publish_order_and_reach_the_snapshots(ctx, event_id, sample) -> None:
    lima = sample["segments"][sample["studios"]["lima"].id]
    assert lima.version == 1
    schedule.set_status(ctx, event_id, lima.id, "live", "mod1")
    schedule.set_status(ctx, event_id, lima.id, "auto", "mod1")
    schedule.tick(ctx, event_id, datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1))  # all upcoming
    schedule.set_status(ctx, event_id, lima.id, "ended", "mod2")
    for channel in ("schedule", "moderation"):
        updates = [s for s in stream(ctx, event_id, channel, "segment.updated") if s["id"] == lima.id]
        assert [s["version"] for s in updates] == [2, 3, 4, 5], updates
        assert [s["status"] for s in updates] == ["live", "live", "upcoming", "ended"]
    shown = {s["id"]: s for s in snapshots.schedule(ctx, event_id)["segments"]}
    assert shown[lima.id]["version"] == 5 and shown[lima.id]["status"] == "ended"
    opening = sample["segments"][sample["studios"]["moscow"].id]
    assert shown[opening.id]["version"] == 2  # the tick set it upcoming once


def test_questions_asked_into_a_studio_do_not_wait_for_its_lock(ctx, event_id, sample) -> None:
    """The studio lock (FOR NO KEY UPDATE) lets inserts that point at the studio through."""
    if ctx.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises every writer anyway (BEGIN IMMEDIATE)")
    asked: list[int] = []
    speaker = sample["speakers"]["moscow"][0].id
    with ctx.transaction() as (db, _):
        questions.lock_studio(db, event_id, sample["studios"]["moscow"].id)
        viewer = threading.Thread(target=lambda: asked.append(ask(ctx, event_id, speaker)))
        viewer.start()
        viewer.join(5 * SECOND)
        assert asked, "asking waited for the studio lock"
