"""The public feed and its votes: what the feed channels hear, what a snapshot holds,
and the vote count the database keeps, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from qa_service.bus import channels
from qa_service.db.models import Question, Segment, Vote
from qa_service.domain.errors import Conflict, DomainError, NotFound
from qa_service.services import feed, privacy, questions, snapshots
from qa_service.services.context import Context

from .support import ask, stream

pytestmark = pytest.mark.integration


def _act(ctx: Context, event_id: int, qid: int, action: str, **kwargs: Any) -> dict[str, Any]:
    return questions.moderate(ctx, event_id, qid, action, "mod1", expected_version=None, **kwargs)


def _approved(ctx: Context, event_id: int, speaker: int, text: str = "Do you export to Europe?", **kw: Any) -> int:
    qid = ask(ctx, event_id, speaker, text, **kw)
    _act(ctx, event_id, qid, "approve")
    return qid


def _vote(ctx: Context, event_id: int, viewer: str, qid: int, up: bool = True) -> dict[str, Any]:
    return feed.vote(ctx, event_id, viewer, {"question_id": qid, "vote": up})


def _feed_ids(ctx: Context, event_id: int, language: str | None = None) -> list[int]:
    return [item["id"] for item in feed.snapshot(ctx, event_id, language)["items"]]


def _count_rows(ctx: Context, qid: int) -> tuple[int, int]:
    """(the question's count, its vote rows)."""
    with ctx.read() as db:
        q = db.get(Question, qid)
        assert q is not None
        rows = db.exec(sa.select(sa.func.count()).select_from(Vote).where(Vote.question_id == qid)).one()  # type: ignore[call-overload]
        return q.votes, int(rows[0])


def test_a_question_reaches_the_feed_when_approved_and_leaves_it_when_hidden_or_rejected(ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    qid = ask(ctx, event_id, speaker, "Do you export to Europe?")
    assert qid not in _feed_ids(ctx, event_id)
    assert not [p for p in stream(ctx, event_id, channels.FEED, "feed.upsert") if p["id"] == qid]  # pending: never

    questions.edit_translation(ctx, event_id, qid, "ru", "Вы экспортируете в Европу?", "mod1", expected_version=None)
    _act(ctx, event_id, qid, "approve")
    (upsert,) = [p for p in stream(ctx, event_id, channels.FEED, "feed.upsert") if p["id"] == qid]
    assert (upsert["text"], upsert["language"], upsert["status"], upsert["votes"]) == (
        "Do you export to Europe?",
        "en",
        "approved",
        0,
    )
    assert not {"viewer", "viewer_id", "address_hash", "country"} & set(upsert)
    # Its text in Russian (the moderator's edit) goes to the Russian readers' channel only.
    (text,) = stream(ctx, event_id, channels.feed_texts("ru"), "feed.text")
    assert text == {"id": qid, "language": "ru", "text": "Вы экспортируете в Европу?", "machine": False}
    assert stream(ctx, event_id, channels.feed_texts("de"), "feed.text") == []
    snap = feed.snapshot(ctx, event_id, "ru")
    assert [i["id"] for i in snap["items"]] == [qid] and snap["texts"][str(qid)]["text"].startswith("Вы")
    assert feed.snapshot(ctx, event_id, "de")["texts"] == {}

    # Queued and on air: still on the feed, its status word follows.
    _act(ctx, event_id, qid, "on_air", from_approved=True)
    assert stream(ctx, event_id, channels.FEED, "feed.upsert")[-1]["status"] == "on_air"

    hidden = questions.set_feed_hidden(ctx, event_id, qid, True, "mod1", expected_version=None)
    assert hidden["feed_hidden"] is True and hidden["status"] == "on_air"  # not rejected, still on air
    assert stream(ctx, event_id, channels.FEED, "feed.remove")[-1] == {"id": qid}
    assert qid not in _feed_ids(ctx, event_id)
    with pytest.raises(NotFound):
        _vote(ctx, event_id, "viewer-v1", qid)
    questions.set_feed_hidden(ctx, event_id, qid, False, "mod1", expected_version=None)
    assert _feed_ids(ctx, event_id) == [qid]

    other = _approved(ctx, event_id, speaker, "Do you export to Asia?")
    _act(ctx, event_id, other, "reject", reason="off_topic")
    assert stream(ctx, event_id, channels.FEED, "feed.remove")[-1] == {"id": other}
    assert _feed_ids(ctx, event_id) == [qid]


def test_a_segment_that_is_not_live_leaves_the_feed_and_closes_its_vote(ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0]
    qid = _approved(ctx, event_id, speaker.id)
    _vote(ctx, event_id, "viewer-v1", qid)
    with ctx.transaction() as (db, _):
        seg = db.get(Segment, speaker.segment_id)
        assert seg is not None
        seg.status = "ended"
        db.add(seg)
    assert qid not in _feed_ids(ctx, event_id)
    with pytest.raises(Conflict) as err:
        _vote(ctx, event_id, "viewer-v2", qid)
    assert err.value.code == "vote.closed"
    assert _count_rows(ctx, qid) == (1, 1)


def test_a_vote_counts_once_per_viewer_and_can_be_taken_back(ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    qid = _approved(ctx, event_id, speaker)
    version = next(q for q in snapshots.moderator(ctx, event_id)["questions"] if q["id"] == qid)["version"]
    assert _vote(ctx, event_id, "viewer-v1", qid) == {"question_id": qid, "votes": 1, "voted": True}
    assert _vote(ctx, event_id, "viewer-v1", qid) == {"question_id": qid, "votes": 1, "voted": True}
    assert _vote(ctx, event_id, "viewer-v2", qid)["votes"] == 2
    assert _vote(ctx, event_id, "viewer-v1", qid, False) == {"question_id": qid, "votes": 1, "voted": False}
    assert _vote(ctx, event_id, "viewer-v1", qid, False)["votes"] == 1
    assert _count_rows(ctx, qid) == (1, 1)
    assert snapshots.viewer_own(ctx, event_id, "viewer-v2")["my_votes"] == [qid]
    assert snapshots.viewer_own(ctx, event_id, "viewer-v1")["my_votes"] == []
    # A vote moves no version: a moderator's next action does not lose to it.
    view = next(q for q in snapshots.moderator(ctx, event_id)["questions"] if q["id"] == qid)
    assert (view["votes"], view["version"]) == (1, version)


MALFORMED = {
    "id as text": lambda qid: {"question_id": str(qid), "vote": True},
    "vote as text": lambda qid: {"question_id": qid, "vote": "yes"},
    "vote as number": lambda qid: {"question_id": qid, "vote": 1},
    "no vote": lambda qid: {"question_id": qid},
    "id too large": lambda qid: {"question_id": 10**30, "vote": True},
    "no id": lambda qid: {"vote": True},
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_vote_is_refused_and_changes_nothing(ctx, event_id, sample, case) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    qid = _approved(ctx, event_id, speaker)
    with pytest.raises(DomainError) as err:
        feed.vote(ctx, event_id, "viewer-v1", MALFORMED[case](qid))
    assert err.value.code == "vote.invalid"
    assert _count_rows(ctx, qid) == (0, 0)


def test_a_pending_or_unknown_question_takes_no_vote(ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    pending = ask(ctx, event_id, speaker)
    for qid in (pending, 999_999):
        with pytest.raises(NotFound) as err:
            _vote(ctx, event_id, "viewer-v1", qid)
        assert err.value.code == "question.unknown"
    assert _count_rows(ctx, pending) == (0, 0)


def test_concurrent_votes_keep_the_count_equal_to_the_votes_stored(ctx, event_id, sample) -> None:
    """Twenty viewers vote at once, each twice (two sockets): twenty votes, count 20;
    then half take theirs back at once: ten. The database decides, not the code."""
    speaker = sample["speakers"]["moscow"][0].id
    qid = _approved(ctx, event_id, speaker)
    errors: list[BaseException] = []

    def run(viewer: str, up: bool) -> None:
        try:
            _vote(ctx, event_id, viewer, qid, up)
        except BaseException as exc:  # reported below
            errors.append(exc)

    def storm(calls: list[tuple[str, bool]]) -> None:
        threads = [threading.Thread(target=run, args=c) for c in calls]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)

    viewers = [f"viewer-c{i:02d}" for i in range(20)]
    storm([(v, True) for v in viewers for _ in range(2)])
    assert not errors, errors
    assert _count_rows(ctx, qid) == (20, 20)
    errors.clear()
    storm([(v, False) for v in viewers[:10] for _ in range(2)])
    assert not errors, errors
    assert _count_rows(ctx, qid) == (10, 10)


def test_vote_counts_go_out_per_channel_with_the_current_count(ctx, event_id, sample) -> None:
    moscow, jakarta = sample["speakers"]["moscow"][0], sample["speakers"]["jakarta"][0]
    with ctx.transaction() as (db, _):  # two studios live at once
        seg = db.get(Segment, jakarta.segment_id)
        assert seg is not None
        seg.status = "live"
        db.add(seg)
    a = _approved(ctx, event_id, moscow.id)
    b = _approved(ctx, event_id, jakarta.id, "How many people work at the factory?")
    pending = ask(ctx, event_id, moscow.id, "Still pending?")
    for viewer in ("v1", "v2", "v3"):
        _vote(ctx, event_id, viewer, a)
    _vote(ctx, event_id, "v1", b)
    assert feed.publish_votes(ctx, event_id, [a, b, pending, a]) == 3
    assert stream(ctx, event_id, channels.FEED, "votes.changed")[-1] == {"votes": {str(a): 3, str(b): 1}}
    assert stream(ctx, event_id, channels.MODERATION, "votes.changed")[-1] == {
        "votes": {str(a): 3, str(b): 1, str(pending): 0}
    }
    moscow_studio = sample["studios"]["moscow"].id
    assert stream(ctx, event_id, channels.studio(moscow_studio), "votes.changed")[-1] == {
        "votes": {str(a): 3, str(pending): 0}
    }


def test_forgetting_a_viewer_takes_its_votes_off_the_counts_and_its_questions_off_the_feed(
    ctx, event_id, sample
) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    others = _approved(ctx, event_id, speaker, viewer="viewer-other")
    mine = _approved(ctx, event_id, speaker, "Do you export to Asia?", viewer="viewer-gone")
    _vote(ctx, event_id, "viewer-gone", others)
    _vote(ctx, event_id, "viewer-x", others)
    _vote(ctx, event_id, "viewer-x", mine)
    privacy.forget_viewer(ctx, "viewer-gone")
    assert _count_rows(ctx, others) == (1, 1)
    assert _feed_ids(ctx, event_id) == [others]
    assert stream(ctx, event_id, channels.FEED, "feed.remove")[-1] == {"id": mine}
    # Its text is gone from the feed's history too (a replay cannot bring it back).
    assert [p["id"] for p in stream(ctx, event_id, channels.FEED, "feed.upsert")] == [others]
    assert stream(ctx, event_id, channels.FEED, "votes.changed")[-1] == {"votes": {str(others): 1}}
    with ctx.read() as db:
        assert db.exec(select(Vote).where(Vote.viewer_id == "viewer-gone")).all() == []


def test_the_languages_read_are_summed_over_hubs_most_read_first_and_bounded(ctx, event_id) -> None:
    client, prefix = ctx.publisher.client, ctx.settings.redis_prefix
    feed.report_languages(client, prefix, event_id, "hub-a", Counter({"ru": 5, "de": 1, "ar": 0}))
    feed.report_languages(client, prefix, event_id, "hub-b", Counter({"de": 2, "zh": 3}))
    assert feed.active_languages(client, prefix, event_id, 10) == ["ru", "de", "zh"]
    assert feed.active_languages(client, prefix, event_id, 2) == ["ru", "de"]
    feed.report_languages(client, prefix, event_id, "hub-a", Counter())  # its viewers left
    assert feed.active_languages(client, prefix, event_id, 10) == ["zh", "de"]
    # A hub that stops reporting stops counting.
    client.zadd(f"{prefix}:feed:languages:{event_id}", {"hub-b": time.time() - feed.LANGUAGE_REPORT_TTL - 1})
    assert feed.active_languages(client, prefix, event_id, 10) == []


def test_a_group_of_votes_is_applied_in_order_each_judged_on_its_own(ctx, event_id, sample) -> None:
    """vote_many: one transaction for a burst; the same viewer twice, a vote taken back
    within the group, a refused one among them; the count moves by the net change."""
    speaker = sample["speakers"]["moscow"][0].id
    a = _approved(ctx, event_id, speaker)
    b = _approved(ctx, event_id, speaker, "Do you export to Asia?")
    pending = ask(ctx, event_id, speaker, "Still pending?")
    _vote(ctx, event_id, "v-old", b)
    requests = [
        feed.VoteRequest("v1", {"question_id": a, "vote": True}),
        feed.VoteRequest("v1", {"question_id": a, "vote": True}),  # twice: counted once
        feed.VoteRequest("v2", {"question_id": a, "vote": True}),
        feed.VoteRequest("v2", {"question_id": a, "vote": False}),  # taken back in the same group
        feed.VoteRequest("v3", {"question_id": pending, "vote": True}),  # refused alone
        feed.VoteRequest("v3", {"question_id": "x", "vote": True}),
        feed.VoteRequest("v-old", {"question_id": b, "vote": False}),  # an earlier vote taken back
        feed.VoteRequest("v3", {"question_id": b, "vote": True}),
    ]
    results = feed.vote_many(ctx, event_id, requests)
    assert [r["voted"] if isinstance(r, dict) else r.code for r in results] == [
        True,
        True,
        True,
        False,
        "question.unknown",
        "vote.invalid",
        False,
        True,
    ]
    assert _count_rows(ctx, a) == (1, 1) and _count_rows(ctx, b) == (1, 1) and _count_rows(ctx, pending) == (0, 0)
    assert {r["votes"] for r in results[:4] if isinstance(r, dict)} == {1}
    assert snapshots.viewer_own(ctx, event_id, "v1")["my_votes"] == [a]
    assert snapshots.viewer_own(ctx, event_id, "v2")["my_votes"] == []


def test_forgetting_viewers_while_they_vote_keeps_every_count_equal_to_its_votes(ctx, event_id, sample) -> None:
    """The reviewer's race: votes given and taken back through other sockets while the
    same viewers are forgotten; whatever interleaves, counts match the stored votes."""
    import random

    speaker = sample["speakers"]["moscow"][0].id
    qids = [_approved(ctx, event_id, speaker), _approved(ctx, event_id, speaker, "Do you export to Asia?")]
    viewers = [f"viewer-r{i}" for i in range(3)]
    errors: list[BaseException] = []
    stop = threading.Event()

    def voter(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            try:
                _vote(ctx, event_id, rng.choice(viewers), rng.choice(qids), rng.random() < 0.6)
            except BaseException as exc:  # reported below
                errors.append(exc)

    def forgetter() -> None:
        for n in range(60):
            try:
                privacy.forget_viewer(ctx, viewers[n % len(viewers)])
            except BaseException as exc:  # reported below
                errors.append(exc)

    threads = [threading.Thread(target=voter, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    forgetter()
    stop.set()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    for qid in qids:
        votes, rows = _count_rows(ctx, qid)
        assert votes == rows and votes >= 0


def test_forgetting_scrubs_the_feeds_texts_in_every_language_they_went_out_in(ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    qid = _approved(ctx, event_id, speaker, viewer="viewer-gone")
    questions.edit_translation(ctx, event_id, qid, "de", "Exportieren Sie nach Europa?", "mod1", expected_version=None)
    assert [p["id"] for p in stream(ctx, event_id, channels.feed_texts("de"), "feed.text")] == [qid]
    privacy.forget_viewer(ctx, "viewer-gone")
    assert stream(ctx, event_id, channels.feed_texts("de"), "feed.text") == []
