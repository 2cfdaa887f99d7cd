"""What askers see of merged and hidden questions, and the merged counts staff see:
events on the bus (the Redis streams) and fresh snapshots, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from qa_service.bus import channels
from qa_service.db.models import Question
from qa_service.domain.errors import Conflict
from qa_service.services import questions, schedule, snapshots
from qa_service.services.context import Context

from .support import ask, stream

pytestmark = pytest.mark.integration


def _merge(ctx: Context, event_id: int, qid: int, into: int) -> dict[str, Any]:
    return questions.moderate(ctx, event_id, qid, "merge", "mod1", expected_version=None, merged_into=into)


def _act(ctx: Context, event_id: int, qid: int, action: str, **kwargs: Any) -> dict[str, Any]:
    return questions.moderate(ctx, event_id, qid, action, "mod1", expected_version=None, **kwargs)


def _viewer_events(ctx: Context, event_id: int, viewer: str, qid: int) -> list[dict[str, Any]]:
    return [p for p in stream(ctx, event_id, channels.viewer(viewer), "question.updated") if p["id"] == qid]


def _own(ctx: Context, event_id: int, viewer: str, qid: int) -> dict[str, Any]:
    return next(q for q in snapshots.viewer_own(ctx, event_id, viewer)["questions"] if q["id"] == qid)


def _moderator_view(ctx: Context, event_id: int, qid: int) -> dict[str, Any]:
    return next(q for q in snapshots.moderator(ctx, event_id)["questions"] if q["id"] == qid)


def test_a_banned_askers_question_reads_as_received_in_the_event_and_the_snapshot(ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    first = ask(ctx, event_id, speaker, "Spam one", viewer="viewer-spam")
    questions.ban_asker(ctx, event_id, first, "mod1")
    hidden = questions.ask(
        ctx,
        event_id,
        "viewer-spam",
        {"client_id": "spam-0002", "speaker_id": speaker, "text": "Spam two", "language": "en"},
    ).question
    assert (hidden["status"], hidden["reason"]) == ("received", None)
    (created,) = [
        p for p in stream(ctx, event_id, channels.viewer("viewer-spam"), "question.created") if p["id"] == hidden["id"]
    ]
    assert (created["status"], created["reason"]) == ("received", None)
    assert _own(ctx, event_id, "viewer-spam", hidden["id"]) == created
    # Sent again (a retry after a lost reply): the same.
    again = questions.find_existing(ctx, "viewer-spam", "spam-0002")
    assert again is not None and (again["status"], again["reason"]) == ("received", None)
    assert "hidden" not in json.dumps(snapshots.viewer_own(ctx, event_id, "viewer-spam"))
    # Moderators still never see it.
    assert hidden["id"] not in [q["id"] for q in snapshots.moderator(ctx, event_id)["questions"]]
    moderation = stream(ctx, event_id, channels.MODERATION, "question.created")
    assert hidden["id"] not in [p["id"] for p in moderation]


def test_a_merged_asker_follows_the_kept_question_to_answered(ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    kept = ask(ctx, event_id, speaker, "Kept: when does the plant open?", viewer="viewer-kept")
    merged = ask(ctx, event_id, speaker, "When will the plant open?", viewer="viewer-merged")
    view = _merge(ctx, event_id, merged, kept)
    assert view["status"] == "merged"
    # The merge itself: the merged asker sees their question follow the pending kept one.
    assert [(e["status"], e["merged"]) for e in _viewer_events(ctx, event_id, "viewer-merged", merged)] == [
        ("received", True)
    ]
    _act(ctx, event_id, kept, "approve", enqueue=False)
    _act(ctx, event_id, kept, "on_air", from_approved=True)
    _act(ctx, event_id, kept, "answer")
    events = _viewer_events(ctx, event_id, "viewer-merged", merged)
    assert [e["status"] for e in events] == ["received", "approved", "on_air", "answered"]
    assert all(e["merged"] is True and e["text"] == "When will the plant open?" for e in events)
    # Never a word of the kept question, nor of its asker.
    history = stream(ctx, event_id, channels.viewer("viewer-merged"), "question.updated")
    assert "Kept" not in json.dumps(history) and "viewer-kept" not in json.dumps(history)
    assert {e["id"] for e in history} == {merged} and all("merged_into" not in e for e in history)
    fresh = _own(ctx, event_id, "viewer-merged", merged)
    assert (fresh["status"], fresh["merged"], fresh["reason"]) == ("answered", True, None)
    # The kept asker's own view is as ever.
    assert _own(ctx, event_id, "viewer-kept", kept)["merged"] is False


def test_a_chain_of_merges_is_followed_to_its_end(ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    a = ask(ctx, event_id, speaker, "A?", viewer="viewer-a")
    b = ask(ctx, event_id, speaker, "B?", viewer="viewer-b")
    c = ask(ctx, event_id, speaker, "C?", viewer="viewer-c")
    _act(ctx, event_id, b, "approve", enqueue=False)
    _merge(ctx, event_id, a, b)
    assert _own(ctx, event_id, "viewer-a", a)["status"] == "approved"
    _merge(ctx, event_id, b, c)  # b (and so a) now follow c, still pending
    assert [e["status"] for e in _viewer_events(ctx, event_id, "viewer-a", a)] == ["approved", "received"]
    _act(ctx, event_id, c, "approve")
    _act(ctx, event_id, c, "reject", reason="no_time")  # a moderator changes their mind
    for viewer, qid in (("viewer-a", a), ("viewer-b", b)):
        events = _viewer_events(ctx, event_id, viewer, qid)
        assert (events[-2]["status"], events[-1]["status"], events[-1]["reason"]) == (
            "approved",
            "not_selected",
            "no_time",
        )
        assert _own(ctx, event_id, viewer, qid) == events[-1]
    # C's moderator view counts both, through the chain.
    view = _moderator_view(ctx, event_id, c)
    assert (view["merged_count"], view["merged_ids"]) == (2, [a, b])
    assert _moderator_view(ctx, event_id, b)["merged_count"] == 1


def test_a_kept_questions_own_reason_is_not_told_to_merged_askers(ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    kept = ask(ctx, event_id, speaker, "Kept?", viewer="viewer-kept")
    merged = ask(ctx, event_id, speaker, "Same?", viewer="viewer-merged")
    _merge(ctx, event_id, merged, kept)
    _act(ctx, event_id, kept, "reject", reason="Rude to Mr Ivanov, viewer-kept")
    last = _viewer_events(ctx, event_id, "viewer-merged", merged)[-1]
    assert (last["status"], last["reason"]) == ("not_selected", None)


def test_undoing_a_merge_gives_the_asker_their_own_question_back(ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    studio = sample["studios"]["moscow"].id
    kept = ask(ctx, event_id, speaker, "Kept?", viewer="viewer-kept")
    merged = ask(ctx, event_id, speaker, "Same?", viewer="viewer-merged")
    _act(ctx, event_id, kept, "approve")  # queued: its studio's host shows it
    merged_view = _merge(ctx, event_id, merged, kept)
    assert _own(ctx, event_id, "viewer-merged", merged)["status"] == "approved"
    back = questions.undo(ctx, event_id, merged, "mod1", expected_version=merged_view["version"])
    assert back["status"] == "pending"
    last = _viewer_events(ctx, event_id, "viewer-merged", merged)[-1]
    assert (last["status"], last["merged"]) == ("received", False)
    # The kept question's count went 0 -> 1 -> 0, told to moderators and to the host.
    counts = [
        p["merged_count"] for p in stream(ctx, event_id, channels.MODERATION, "question.updated") if p["id"] == kept
    ]
    assert counts[-2:] == [1, 0]
    upserts = [p for p in stream(ctx, event_id, channels.studio(studio), "queue.upsert") if p["id"] == kept]
    assert [p["merged_count"] for p in upserts][-2:] == [1, 0]
    assert _moderator_view(ctx, event_id, kept)["merged_count"] == 0


def test_merged_counts_on_the_moderator_and_host_views(ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    studio = sample["studios"]["moscow"].id
    kept = ask(ctx, event_id, speaker, "Kept?", viewer="viewer-kept")
    _act(ctx, event_id, kept, "approve")
    x = ask(ctx, event_id, speaker, "X?", viewer="viewer-x")
    y = ask(ctx, event_id, speaker, "Y?", viewer="viewer-y")
    _merge(ctx, event_id, x, y)
    result = _merge(ctx, event_id, y, kept)
    assert result["merged_count"] == 1 and result["merged_ids"] == [x]  # y's own view
    moderation = [p for p in stream(ctx, event_id, channels.MODERATION, "question.updated") if p["id"] == kept]
    assert (moderation[-1]["merged_count"], moderation[-1]["merged_ids"]) == (2, [x, y])
    upsert = [p for p in stream(ctx, event_id, channels.studio(studio), "queue.upsert") if p["id"] == kept][-1]
    assert upsert["merged_count"] == 2 and "merged_ids" not in upsert
    host = next(q for q in snapshots.host(ctx, event_id, studio)["questions"] if q["id"] == kept)
    assert host["merged_count"] == 2
    view = _moderator_view(ctx, event_id, kept)
    assert (view["merged_count"], view["merged_ids"]) == (2, [x, y])
    # A hidden question is never counted (nor can it be merged: it is rejected).
    spam = ask(ctx, event_id, speaker, "Spam", viewer="viewer-spam")
    questions.ban_asker(ctx, event_id, spam, "mod1")
    ask(ctx, event_id, speaker, "Spam again", viewer="viewer-spam")
    assert _moderator_view(ctx, event_id, kept)["merged_count"] == 2
    # Its status changing tells the askers merged into it, not its count.
    _act(ctx, event_id, kept, "on_air")
    assert _own(ctx, event_id, "viewer-x", x)["status"] == "on_air"


@contextmanager
def _statements(ctx: Context) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(ctx.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(ctx.engine, "before_cursor_execute", count)


def test_snapshots_read_merges_in_one_query_per_link(ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    studio = sample["studios"]["moscow"].id

    def build(n: int) -> None:
        for i in range(n):
            kept = ask(ctx, event_id, speaker, f"Kept {n}-{i}?", viewer=f"viewer-k{n}-{i}")
            _act(ctx, event_id, kept, "approve")
            _merge(ctx, event_id, ask(ctx, event_id, speaker, f"Same {n}-{i}?", viewer=f"viewer-many{n}"), kept)

    def reads(viewer: str) -> tuple[int, int, int]:
        with _statements(ctx) as own:
            snapshots.viewer_own(ctx, event_id, viewer)
        with _statements(ctx) as moderator:
            snapshots.moderator(ctx, event_id)
        with _statements(ctx) as host:
            snapshots.host(ctx, event_id, studio)
        return len(own), len(moderator), len(host)

    build(1)
    one = reads("viewer-many1")
    build(6)
    assert reads("viewer-many6") == one  # six merged questions cost what one did
    own = snapshots.viewer_own(ctx, event_id, "viewer-many6")["questions"]
    assert [(q["status"], q["merged"]) for q in own] == [("approved", True)] * 6
    hosted = snapshots.host(ctx, event_id, studio)["questions"]
    assert [q["merged_count"] for q in hosted] == [1] * 7


def test_forgetting_the_kept_asker_tells_the_merged_ones(ctx, event_id, sample) -> None:
    from qa_service.services.privacy import forget_viewer

    speaker = sample["speakers"]["moscow"][0].id
    kept = ask(ctx, event_id, speaker, "Kept?", viewer="viewer-forget-me")
    merged = ask(ctx, event_id, speaker, "Same?", viewer="viewer-stays")
    _merge(ctx, event_id, merged, kept)
    forget_viewer(ctx, "viewer-forget-me")
    last = _viewer_events(ctx, event_id, "viewer-stays", merged)[-1]
    assert (last["status"], last["merged"]) == ("approved", True)  # as merged questions always read before
    assert _own(ctx, event_id, "viewer-stays", merged) == last


def test_a_question_is_merged_only_into_one_of_its_own_studio(ctx, event_id, sample) -> None:
    jakarta_segment = sample["segments"][sample["studios"]["jakarta"].id]
    schedule.set_status(ctx, event_id, jakarta_segment.id, "live", "mod1")
    moscow = ask(ctx, event_id, sample["speakers"]["moscow"][0].id, "Which steel grades?", viewer="viewer-m")
    jakarta = ask(ctx, event_id, sample["speakers"]["jakarta"][0].id, "Which nickel grades?", viewer="viewer-j")
    with pytest.raises(Conflict) as refused:
        _merge(ctx, event_id, jakarta, moscow)
    assert refused.value.code == "question.merge_other_studio"
    with ctx.read() as db:
        row = db.get(Question, jakarta)
        assert row is not None and (row.status, row.merged_into_id) == ("pending", None)
