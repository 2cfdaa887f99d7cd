"""The report (services/report.py) on SQLite and PostgreSQL: a constructed event whose
counts, funnel, times and workload are known, and one driven through the real services."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from qa_service.db.models import ModerationAction, Question, Segment
from qa_service.domain.lifecycle import HIDDEN
from qa_service.services import questions, report

from .support import ask

pytestmark = pytest.mark.integration


def test_pure_helpers() -> None:
    assert report.bucket_minutes(timedelta(hours=2)) == 10
    assert report.bucket_minutes(timedelta(hours=24)) == 15  # 96 buckets of 15 minutes
    assert report.bucket_minutes(timedelta(hours=48)) == 30
    assert report.bucket_minutes(timedelta(days=400)) % 1440 == 0
    assert report.percentile([], 0.9) is None
    assert report.percentile([1.0, 2.0, 3.0], 0.9) == 3.0
    assert report.percentile([float(i) for i in range(1, 11)], 0.9) == 9.0
    counts = [b["count"] for b in report.histogram([0, 1.99, 2, 4, 12, 500])]
    assert counts == [2, 2, 0, 1, 0, 0, 0, 1]
    assert report.top({"a": 1, "b": 5, "c": 5, "d": 2}, 2) == {
        "items": [{"key": "b", "count": 5}, {"key": "c", "count": 5}],
        "other": 3,
    }
    assert report.kind_of("enqueue") == "queue" and report.kind_of("star") == "other"


def _question(db: Any, event_id: int, speaker: Any, studio_id: int, at: datetime, **fields: Any) -> Question:
    q = Question(
        event_id=event_id,
        speaker_id=speaker.id,
        segment_id=speaker.segment_id,
        studio_id=studio_id,
        viewer_id=uuid.uuid4().hex,
        client_id=uuid.uuid4().hex,
        text=fields.pop("text", "A question?"),
        created_at=at,
        updated_at=at,
        **fields,
    )
    db.add(q)
    db.flush()
    return q


def _action(db: Any, event_id: int, q: Question, actor: str, action: str, at: datetime) -> None:
    db.add(ModerationAction(event_id=event_id, question_id=q.id, actor=actor, action=action, created_at=at))


@pytest.fixture
def constructed(ctx, event_id, sample) -> dict[str, Any]:
    """Nine questions in two studios with known times (minutes after the marathon's start)."""
    a1, a2 = sample["speakers"]["moscow"][:2]
    (b1,) = sample["speakers"]["jakarta"][:1]
    moscow, jakarta = sample["studios"]["moscow"].id, sample["studios"]["jakarta"].id
    with ctx.transaction() as (db, _):
        t0 = min(s.starts_at for s in db.exec(select(Segment).where(Segment.event_id == event_id)))

        def at(minutes: float) -> datetime:
            return t0 + timedelta(minutes=minutes)

        def q(speaker: Any, studio: int, minute: float, **fields: Any) -> Question:
            return _question(db, event_id, speaker, studio, at(minute), **fields)

        q1 = q(a1, moscow, 0, language="en", country="DE", status="answered", votes=5)
        q2 = q(a1, moscow, 2, language="ru", country="RU", status="on_air", votes=9, text="Самый популярный?")
        q3 = q(a2, moscow, 20, language="ru", country="RU", status="queued", votes=1)
        q4 = q(b1, jakarta, 31, language="id", country="ID", status="answered")
        q5 = q(b1, jakarta, 35, language="id", status="rejected", reject_reason="off topic")
        q6 = q(b1, jakarta, 40, language="en", status="merged", merged_into_id=q4.id)
        q7 = q(a2, moscow, 50, language="zh", country="CN", status="pending")
        q(a1, moscow, 55, language="en", country="DE", status="rejected", reject_reason=HIDDEN, votes=50)
        q9 = q(a1, moscow, 61, language="en", country="US", status="approved", votes=3)
        for question, actor, action, minute in [
            (q1, "mod1", "approve", 1),
            (q1, "mod1", "enqueue", 1),
            (q1, "mod2", "on_air", 4),
            (q1, "host:moscow", "answer", 10),
            (q2, "mod1", "on_air", 14),
            (q3, "mod1", "approve", 21),
            (q4, "mod2", "on_air", 32),
            (q4, "mod2", "skip", 33),
            (q5, "mod2", "reject", 36),
            (q4, "mod2", "on_air", 40),
            (q6, "mod1", "merge", 41),
            (q4, "host:jakarta", "answer", 45),
            (q9, "mod1", "approve", 62),
            (q9, "cli:event-load", "event.segment_update", 63),  # a machine: in nobody's workload
        ]:
            _action(db, event_id, question, actor, action, at(minute))
        ids = {"q1": q1.id, "q2": q2.id, "q3": q3.id, "q7": q7.id, "q9": q9.id}
    return {"t0": t0, "moscow": moscow, "jakarta": jakarta, "a1": a1.id, "a2": a2.id, "b1": b1.id, "ids": ids}


def test_counts_funnel_times_votes_and_workload(ctx, event_id, constructed) -> None:
    c = constructed
    r = report.build(ctx, event_id, now=c["t0"] + timedelta(hours=2))
    assert r["event"]["id"] == event_id
    assert r["totals"] == {"questions": 8, "askers": 8, "votes": 18}  # the hidden one counts nowhere
    studios = {s["id"]: s["count"] for s in r["studios"]}
    assert studios[c["moscow"]] == 5 and studios[c["jakarta"]] == 3 and sum(studios.values()) == 8
    speakers = {s["id"]: s["count"] for s in r["speakers"]["items"]}
    assert [speakers[c["a1"]], speakers[c["a2"]], speakers[c["b1"]]] == [3, 2, 3]
    assert sum(s["count"] for s in r["speakers"]["items"]) + r["speakers"]["other"] == 8
    assert r["languages"]["items"] == [
        {"key": "en", "count": 3},
        {"key": "id", "count": 2},
        {"key": "ru", "count": 2},
        {"key": "zh", "count": 1},
    ]
    assert r["countries"]["items"][0] == {"key": "RU", "count": 2}
    assert {i["key"]: i["count"] for i in r["countries"]["items"]} == {"RU": 2, "DE": 1, "ID": 1, "CN": 1, "US": 1}
    assert r["countries"]["unknown"] == 2 and r["countries"]["other"] == 0

    assert r["funnel"] == {
        "asked": 8,
        "approved": 5,
        "on_air": 3,
        "answered": 2,
        "pending": 1,
        "rejected": 1,
        "merged": 1,
        "hidden": 1,
    }
    f = r["funnel"]
    assert f["approved"] + f["pending"] + f["rejected"] + f["merged"] == f["asked"]

    air = r["time_to_air"]  # q1: 4 min, q2: 12 min, q4: 1 min (its first time on air)
    assert air["count"] == 3 and air["median_seconds"] == 240 and air["p90_seconds"] == 720
    assert {(b["from_minutes"], b["count"]) for b in air["histogram"] if b["count"]} == {(0, 1), (2, 1), (10, 1)}
    assert air["histogram"][-1]["to_minutes"] is None

    voted = r["most_voted"]
    assert [v["id"] for v in voted] == [c["ids"]["q2"], c["ids"]["q1"], c["ids"]["q9"], c["ids"]["q3"]]
    assert voted[0]["text"] == "Самый популярный?" and voted[0]["votes"] == 9 and voted[0]["status"] == "on_air"

    w = r["workload"]
    assert [m["actor"] for m in w["moderators"]] == ["mod1", "mod2"]  # host displays apart
    mod1, mod2 = w["moderators"]
    assert mod1["total"] == 6 and mod1["by_kind"]["approve"] == 3 and mod1["by_kind"]["queue"] == 1
    assert mod1["by_kind"]["merge"] == 1 and mod1["by_kind"]["air"] == 1
    assert mod2["total"] == 5 and mod2["by_kind"]["air"] == 4 and mod2["by_kind"]["reject"] == 1
    assert w["hosts"] == 2
    hours = w["per_hour"]
    assert hours["bucket_minutes"] == 60 and len(hours["labels"]) in (2, 3)  # +1 to +62 minutes
    assert {m["actor"]: sum(m["counts"]) for m in hours["moderators"]} == {"mod1": 6, "mod2": 5}


def test_timeline_buckets_across_the_marathon(ctx, event_id, constructed) -> None:
    c = constructed
    r = report.build(ctx, event_id, now=c["t0"] + timedelta(hours=2))
    tl = r["timeline"]
    assert tl["bucket_minutes"] == 10
    start = datetime.fromisoformat(tl["start"].removesuffix("Z"))
    assert start <= c["t0"] < start + timedelta(minutes=10)
    assert len(tl["labels"]) in (13, 14)  # two hours from the start, in buckets of 10 minutes
    by_studio = {s["studio_id"]: s["counts"] for s in tl["studios"]}
    assert set(by_studio) == {s["id"] for s in r["studios"]}  # every studio, zeros included

    def index(minute: float) -> int:
        return int((c["t0"] + timedelta(minutes=minute) - start).total_seconds() // 600)

    expected_moscow = [0] * len(tl["labels"])
    for minute in (0, 2, 20, 50, 61):
        expected_moscow[index(minute)] += 1
    assert by_studio[c["moscow"]] == expected_moscow
    assert sum(by_studio[c["jakarta"]]) == 3 and by_studio[c["jakarta"]][index(31)] >= 1
    languages = {s["key"]: s["counts"] for s in tl["languages"]}
    assert {k: sum(v) for k, v in languages.items()} == {"en": 3, "id": 2, "ru": 2, "zh": 1}
    assert languages["zh"][index(50)] == 1


def test_through_the_real_services(ctx, event_id, sample) -> None:
    """The life cycle's own log rows are what the report reads."""
    speaker = sample["speakers"]["moscow"][0].id
    first, second = ask(ctx, event_id, speaker, "First?"), ask(ctx, event_id, speaker, "Second?", viewer="viewer-0002")
    rejected = ask(ctx, event_id, speaker, "Third?", viewer="viewer-0003")
    questions.moderate(ctx, event_id, first, "approve", "mod1", expected_version=1)
    questions.moderate(ctx, event_id, first, "on_air", "mod1", expected_version=3)
    questions.moderate(ctx, event_id, first, "answer", "mod2", expected_version=4)
    questions.moderate(ctx, event_id, rejected, "reject", "mod2", expected_version=1, reason="off topic")
    r = report.build(ctx, event_id)
    assert r["running"] is True  # the sample is shifted to start a minute ago
    assert r["funnel"] | {"hidden": 0} == {
        "asked": 3,
        "approved": 1,
        "on_air": 1,
        "answered": 1,
        "pending": 1,
        "rejected": 1,
        "merged": 0,
        "hidden": 0,
    }
    assert r["time_to_air"]["count"] == 1 and r["time_to_air"]["median_seconds"] >= 0
    kinds = {m["actor"]: m["by_kind"] for m in r["workload"]["moderators"]}
    assert kinds["mod1"]["approve"] == 1 and kinds["mod1"]["queue"] == 1 and kinds["mod1"]["air"] == 1
    assert kinds["mod2"]["air"] == 1 and kinds["mod2"]["reject"] == 1
    assert sum(sum(s["counts"]) for s in r["timeline"]["studios"]) == 3
    assert r["most_voted"] == []
    assert r["totals"] == {"questions": 3, "askers": 3, "votes": 0} and second


def test_an_event_without_questions(ctx, event_id) -> None:
    r = report.build(ctx, event_id)
    assert r["totals"]["questions"] == 0 and r["funnel"]["asked"] == 0
    assert r["time_to_air"] == {
        "count": 0,
        "median_seconds": None,
        "p90_seconds": None,
        "histogram": report.histogram([]),
    }
    assert r["workload"]["moderators"] == [] and r["workload"]["per_hour"]["labels"] == []
    assert r["timeline"]["labels"]  # the marathon's span, all zeros
    assert all(not any(s["counts"]) for s in r["timeline"]["studios"])
