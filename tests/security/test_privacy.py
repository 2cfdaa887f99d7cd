"""Data hygiene: one viewer forgotten on request; whole events purged after retention."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from qa_service.bus.redis_bus import STALE, Keys, topic
from qa_service.db.models import (
    AddressBan,
    Ban,
    Event,
    ModerationAction,
    Question,
    Segment,
    Speaker,
    Studio,
    Translation,
)
from qa_service.services import privacy, questions
from qa_service.services.context import Context
from qa_service.services.event_loader import SAMPLE, load

from ..hub.test_fanout import ask as ws_ask
from ..hub.test_fanout import moderator_ws
from ..services.support import ask
from ..support import SECOND, start_server, wait_until, ws_client
from ..test_cli import run

pytestmark = pytest.mark.integration


def _stream(ctx: Context, event_id: int, channel: str) -> list[dict[str, Any]]:
    key = Keys(ctx.settings.redis_prefix).stream(topic(event_id, channel))
    return [json.loads(fields[b"d"]) for _id, fields in ctx.publisher.client.xrange(key)]


def _asked_by_a(ctx: Context, event_id: int, sample: dict[str, Any]) -> dict[str, int]:
    """Viewer A asks two questions (one queued, hand-translated, another merged into
    by viewer B's), is banned; viewer B asks one."""
    speaker = sample["speakers"]["moscow"][1].id
    a1 = ask(ctx, event_id, speaker, "My private question one?", viewer="viewer-a")
    a2 = ask(ctx, event_id, speaker, "My private question two?", viewer="viewer-a")
    b1 = ask(ctx, event_id, speaker, "Another viewer's question?", viewer="viewer-b")
    questions.moderate(ctx, event_id, a1, "approve", "mod1", expected_version=1)
    questions.edit_translation(ctx, event_id, a1, "ru", "Мой личный вопрос?", "mod1", expected_version=3)
    questions.moderate(ctx, event_id, b1, "merge", "mod1", expected_version=1, merged_into=a2)
    questions.ban_asker(ctx, event_id, a2, "mod1")
    return {"a1": a1, "a2": a2, "b1": b1}


def test_forgetting_a_viewer_deletes_their_questions_translations_bans_and_audit(ctx, event_id, sample) -> None:
    ids = _asked_by_a(ctx, event_id, sample)
    studio_id = sample["studios"]["moscow"].id

    forgotten = privacy.forget_viewer(ctx, "viewer-a")
    assert (forgotten.questions, forgotten.bans) == (2, 1)

    with ctx.read() as db:
        assert db.exec(select(Question).where(Question.viewer_id == "viewer-a")).all() == []
        assert db.exec(select(Translation).where(Translation.question_id == ids["a1"])).all() == []
        audit = db.exec(select(ModerationAction)).all()
        assert not [a for a in audit if a.question_id in (ids["a1"], ids["a2"])]
        # The audit rows about a1 held the moderator's Russian fix (before and after the edit).
        assert "Мой личный вопрос" not in json.dumps([(a.before, a.after) for a in audit], ensure_ascii=False)
        assert db.exec(select(Ban).where(Ban.viewer_id == "viewer-a")).all() == []
        other = db.get(Question, ids["b1"])
        assert other is not None and other.merged_into_id is None  # detached, not deleted

    # Screens: the studio's queue loses the question; moderators and the viewer resync.
    studio = [e["type"] for e in _stream(ctx, event_id, f"studio:{studio_id}")]
    assert studio[-2:] == ["queue.remove", "queue.order"]
    assert _stream(ctx, event_id, "moderation")[-1]["type"] == STALE
    assert _stream(ctx, event_id, "viewer:viewer-a")[-1]["type"] == STALE
    # …and the bus history keeps no copy of the text for a replaying client.
    history = json.dumps(_stream(ctx, event_id, "moderation") + _stream(ctx, event_id, f"studio:{studio_id}"))
    assert "private question" not in history
    assert privacy.forget_viewer(ctx, "viewer-a").questions == 0  # twice is harmless


def test_forgetting_scrubs_studios_a_question_has_left_and_cached_translations_of_edited_ones(
    ctx, event_id, sample
) -> None:
    from workers.translate import _cache_key

    speaker = sample["speakers"]["moscow"][1].id
    studio_id = sample["studios"]["moscow"].id
    other = ask(ctx, event_id, speaker, "Another viewer's question?", viewer="viewer-b")
    gone = {}
    for how in ("dequeue", "reject", "merge"):  # each was on the host screen once, and left it
        qid = gone[how] = ask(ctx, event_id, speaker, f"My secret to {how}?", viewer="viewer-a")
        questions.moderate(ctx, event_id, qid, "approve", "mod1", expected_version=None)
        merged_into = other if how == "merge" else None
        reason = "off topic" if how == "reject" else None
        questions.moderate(
            ctx, event_id, qid, how, "mod1", expected_version=None, reason=reason, merged_into=merged_into
        )
    upserts = [e["payload"]["id"] for e in _stream(ctx, event_id, f"studio:{studio_id}") if e["type"] == "queue.upsert"]
    assert set(gone.values()) <= set(upserts)

    # Machine translations, cached by (route version, text); a moderator then edits
    # one, which empties its model_version.
    version, prefix, client = "en-ru@1.9#0123456789", ctx.settings.redis_prefix, ctx.publisher.client
    with ctx.transaction() as (db, _):
        for qid in (gone["dequeue"], other):
            db.add(
                Translation(
                    question_id=qid, language="ru", text="Машинный перевод", engine="argos", model_version=version
                )
            )
    mine, theirs = (
        _cache_key(prefix, version, text) for text in ("My secret to dequeue?", "Another viewer's question?")
    )
    client.set(mine, "Машинный перевод")
    client.set(theirs, "Машинный перевод")
    questions.edit_translation(ctx, event_id, gone["dequeue"], "ru", "Правка", "mod1", expected_version=None)

    assert privacy.forget_viewer(ctx, "viewer-a").questions == 3

    studio = _stream(ctx, event_id, f"studio:{studio_id}")
    assert "My secret" not in json.dumps(studio)
    assert not [e for e in studio if e["type"] == "queue.upsert" and e["payload"]["id"] in gone.values()]
    assert client.get(mine) is None  # the edited question's cached machine translation went too
    assert client.get(theirs) is not None  # another viewer's stays


def test_forgetting_waits_for_a_worker_storing_a_translation(ctx, event_id, sample) -> None:
    """A worker holds the question's lock while it stores a translation (workers/
    translate.py, step 3): forgetting waits for it, then deletes that translation too,
    instead of failing on the foreign key."""
    qid = ask(ctx, event_id, sample["speakers"]["moscow"][1].id, "Translate me, then forget me?", viewer="viewer-a")
    outcome: list[object] = []

    def forget() -> None:
        try:
            outcome.append(privacy.forget_viewer(ctx, "viewer-a"))
        except Exception as exc:  # reported below
            outcome.append(exc)

    forgetting = threading.Thread(target=forget)
    with ctx.transaction() as (db, _):
        assert db.exec(select(Question).where(Question.id == qid).with_for_update()).first() is not None
        forgetting.start()
        time.sleep(0.5)
        assert forgetting.is_alive() and not outcome  # waiting for the worker's lock
        db.add(Translation(question_id=qid, language="ru", text="Переведи", engine="argos", model_version="en-ru@1#a"))
    forgetting.join(30 * SECOND)
    assert len(outcome) == 1 and isinstance(outcome[0], privacy.Forgotten), outcome
    assert (outcome[0].questions, outcome[0].translations) == (1, 1)
    with ctx.read() as db:
        assert db.get(Question, qid) is None
        assert db.exec(select(Translation).where(Translation.question_id == qid)).all() == []


def test_open_screens_drop_a_forgotten_viewers_question(server, ctx, sample, moderator) -> None:
    speaker = sample["speakers"]["moscow"][1].id
    with ws_client(f"{server.ws_base}/ws/viewer") as viewer, moderator_ws(server, moderator) as console:
        viewer_id = viewer.request("hello")["payload"]["viewer_id"]
        assert console.request("hello")["ok"]
        q = ws_ask(viewer, speaker, "Please forget me?")
        console.wait_event(lambda e: e["type"] == "question.created" and e["payload"]["id"] == q["id"])
        seen = len(console.snapshots), len(viewer.snapshots)

        privacy.forget_viewer(ctx, viewer_id)

        for c, before in ((console, seen[0]), (viewer, seen[1])):
            wait_until(lambda c=c, before=before: (c.pump(0.1), len(c.snapshots) > before)[1], 5 * SECOND, "resync")
            assert q["id"] not in [x["id"] for x in c.snapshots[-1]["payload"]["questions"]]


def test_viewers_forget_command(settings, ctx, event_id, sample) -> None:
    ids = _asked_by_a(ctx, event_id, sample)
    bus = {"QA_REDIS_URL": settings.redis_url or "", "QA_REDIS_PREFIX": settings.redis_prefix}
    out = run(settings, "viewers", "forget", "viewer-a", **bus)
    assert out.returncode == 0, out.stderr
    assert "2 question(s)" in out.stdout
    with ctx.read() as db:
        assert db.get(Question, ids["a1"]) is None and db.get(Question, ids["b1"]) is not None


# ── retention ──────────────────────────────────────────────────────────────
def _old_event(ctx: Context, tmp_path: Path, days_ago: int) -> int:
    """A second event, held ``days_ago`` days ago, with a question, a translation,
    an audit row, bans and a merge inside it."""
    yaml = tmp_path / "old.yaml"
    yaml.write_text(SAMPLE.read_text(encoding="utf-8").replace("slug: industry-marathon", "slug: old-marathon"))
    event_id = load(ctx, yaml, shift_to=datetime.now(UTC) - timedelta(days=days_ago))
    with ctx.transaction() as (db, _):
        segment = db.exec(select(Segment).where(Segment.event_id == event_id)).first()
        assert segment is not None and segment.id is not None
        speaker = db.exec(select(Speaker).where(Speaker.segment_id == segment.id)).first()
        assert speaker is not None and speaker.id is not None
        common = dict(event_id=event_id, speaker_id=speaker.id, segment_id=segment.id, studio_id=segment.studio_id)
        first = Question(**common, viewer_id="old-viewer", client_id="c1", text="Old?", language="en")
        db.add(first)
        db.flush()
        second = Question(
            **common, viewer_id="old-viewer", client_id="c2", text="Old too?", language="en", merged_into_id=first.id
        )
        db.add(second)
        db.flush()
        assert first.id is not None
        db.add(Translation(question_id=first.id, language="ru", text="Старый?", engine="argos"))
        db.add(ModerationAction(event_id=event_id, question_id=first.id, segment_id=segment.id, actor="m", action="x"))
        db.add(Ban(event_id=event_id, viewer_id="old-viewer", actor="m"))
        db.add(AddressBan(event_id=event_id, address_hash="h", actor="m", expires_at=datetime(2000, 1, 1)))
    return event_id


def _count_rows(ctx: Context, event_id: int) -> dict[str, int]:
    with ctx.read() as db:
        qids = [q.id for q in db.exec(select(Question).where(Question.event_id == event_id))]
        return {
            "event": len(db.exec(select(Event).where(Event.id == event_id)).all()),
            "studios": len(db.exec(select(Studio).where(Studio.event_id == event_id)).all()),
            "segments": len(db.exec(select(Segment).where(Segment.event_id == event_id)).all()),
            "questions": len(qids),
            "translations": len(db.exec(select(Translation).where(Translation.question_id.in_(qids))).all()),  # type: ignore[union-attr]
            "audit": len(db.exec(select(ModerationAction).where(ModerationAction.event_id == event_id)).all()),
            "bans": len(db.exec(select(Ban).where(Ban.event_id == event_id)).all()),
            "address_bans": len(db.exec(select(AddressBan).where(AddressBan.event_id == event_id)).all()),
        }


def test_purge_deletes_every_row_of_events_that_ended_long_ago(ctx, event_id, tmp_path) -> None:
    old = _old_event(ctx, tmp_path, days_ago=30)
    assert all(_count_rows(ctx, old).values())
    assert privacy.purge(ctx, days=40) == []  # not old enough yet
    assert privacy.purge(ctx, days=7) == ["old-marathon"]
    assert set(_count_rows(ctx, old).values()) == {0}
    assert _count_rows(ctx, event_id)["studios"] == 9  # the running event is untouched
    assert privacy.purge(ctx, days=7) == []


def test_purge_command_and_the_hubs_hourly_task(settings_factory, ctx, event_id, tmp_path) -> None:
    old = _old_event(ctx, tmp_path, days_ago=30)
    settings = settings_factory(retention_days=7)
    out = run(settings, "purge", QA_RETENTION_DAYS="60")
    assert out.returncode == 0 and "nothing to purge" in out.stdout, out.stderr
    assert _count_rows(ctx, old)["event"] == 1
    unset = run(settings_factory(), "purge")
    assert unset.returncode == 2 and "QA_RETENTION_DAYS" in unset.stderr

    srv = start_server(settings)  # the hub purges once an hour, first at start
    try:
        wait_until(lambda: _count_rows(ctx, old)["event"] == 0, 10 * SECOND, "the hub's purge")
        assert _count_rows(ctx, event_id)["event"] == 1
        alive = srv.server.config.app.state.hub.tasks_alive
        assert alive.get("retention-purge") is True
    finally:
        srv.stop()
