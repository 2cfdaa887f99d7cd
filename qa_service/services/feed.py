"""The public feed: approved questions of the live segments, each in the language its
viewer reads, and the audience's upvotes.

* A question shows on the feed while it is publicly approved (approved, queued, on
  air, answered) and a moderator has not hidden it (fanout decides what the ``feed``
  channel hears).
* One vote per viewer token per question, by the database (a unique constraint);
  the question's count moves in the same transaction (``votes = votes ± 1``, so
  concurrent voters never lose one). A vote changes neither the question's version
  nor anything a moderator sees but the count.
* Counts go out coalesced: a hub gathers the questions voted on and publishes their
  counts at most once a second (``votes.changed``), read from the database then, so
  a burst of votes costs one event per question per second, not one per vote.
* The languages the feed is translated into are those of the viewers connected now
  (reported by every hub to Redis, bounded: the most read first, see
  ``active_languages``); the translation workers make the texts (workers/feed.py).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..bus import channels
from ..db.models import Question, Segment, Translation, Vote
from ..domain.errors import Conflict, DomainError, NotFound
from ..domain.lifecycle import PUBLICLY_APPROVED
from ..domain.validation import check_id
from .context import Context
from .fanout import in_feed
from .views import feed_item, feed_text

FEED_LIMIT = 200  # questions a feed snapshot holds (the newest): every hello and resync carries it
LANGUAGE_REPORT_TTL = 30  # seconds a hub's report of its viewers' languages counts


def _public_statuses() -> list[str]:
    return [s.value for s in PUBLICLY_APPROVED]


def feed_questions(db: Session, event_id: int, ids: Iterable[int] | None = None) -> list[Question]:
    """The questions on the feed now (of live segments), newest first; or those of ``ids`` still on it."""
    stmt = (
        select(Question)
        .join(Segment, col(Segment.id) == col(Question.segment_id))
        .where(
            Question.event_id == event_id,
            col(Question.status).in_(_public_statuses()),
            col(Question.feed_hidden).is_(False),
            Segment.status == "live",
        )
    )
    if ids is not None:
        stmt = stmt.where(col(Question.id).in_(list(ids)))
    return list(db.exec(stmt.order_by(col(Question.id).desc()).limit(FEED_LIMIT)))


def snapshot(ctx: Context, event_id: int, language: str | None) -> dict[str, Any]:
    """The feed as a viewer reading ``language`` starts from: its questions and their
    texts in that language (where there is one). The same for every viewer of that
    language (the hub shares it); the viewer's own votes come with its own part."""
    with ctx.read() as db:
        qs = feed_questions(db, event_id)
        texts: dict[str, dict[str, Any]] = {}
        if language and qs:
            rows = db.exec(
                select(Translation).where(
                    col(Translation.question_id).in_([q.id for q in qs]), Translation.language == language
                )
            )
            texts = {str(t.question_id): feed_text(t.question_id, t) for t in rows}
        return {"language": language, "items": [feed_item(q) for q in reversed(qs)], "texts": texts}


def my_votes(db: Session, event_id: int, viewer_id: str) -> list[int]:
    """The questions of the feed this viewer voted for."""
    rows = db.exec(
        select(Vote.question_id)
        .join(Question, col(Question.id) == col(Vote.question_id))
        .where(Vote.viewer_id == viewer_id, Question.event_id == event_id)
        .order_by(col(Vote.question_id))
    )
    return list(rows)


@dataclass(frozen=True)
class VoteRequest:
    """One viewer's ``question.vote`` as it arrived (not yet validated)."""

    viewer_id: str
    payload: dict[str, Any]


def _parse(payload: dict[str, Any]) -> tuple[int, bool]:
    qid = check_id(payload.get("question_id"), field="question_id", code="vote.invalid")
    up = payload.get("vote")
    if not isinstance(up, bool):
        raise DomainError("vote.invalid", "'vote' must be true (vote) or false (take the vote back)")
    return qid, up


def vote(ctx: Context, event_id: int, viewer_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``question.vote``: add (``vote``: true) or take back (false) this viewer's vote.
    Saying the same twice changes nothing. Only a question on the feed of a live segment takes votes."""
    (result,) = vote_many(ctx, event_id, [VoteRequest(viewer_id, payload)])
    if isinstance(result, DomainError):
        raise result
    return result


def vote_many(ctx: Context, event_id: int, requests: list[VoteRequest]) -> list[dict[str, Any] | DomainError]:
    """Several viewers' votes in one transaction (a burst on a popular question costs
    one commit, not one per vote), applied in order; each is judged on its own (a refused
    one gets its DomainError and changes nothing). Each question's count moves once, by
    the group's net change, in the same transaction as the vote rows."""
    results: list[dict[str, Any] | DomainError | None] = [None] * len(requests)
    parsed: dict[int, tuple[int, bool]] = {}
    for i, r in enumerate(requests):
        try:
            parsed[i] = _parse(r.payload)
        except DomainError as exc:
            results[i] = exc
    if not parsed:
        return results  # type: ignore[return-value]
    try:
        with ctx.transaction() as (db, _outbox):
            _vote_group(db, event_id, requests, parsed, results)
    except sa.exc.IntegrityError as exc:
        # A vote of the same viewer raced in through another socket or hub (the unique
        # constraint; any other constraint is a bug or a question deleted meanwhile).
        if "uq_vote_question_viewer" not in str(exc.orig) and "vote.question_id, vote.viewer_id" not in str(exc.orig):
            raise
        if len(parsed) == 1:
            (i,) = parsed
            qid = parsed[i][0]
            with ctx.read() as db:
                q = db.get(Question, qid)
                return [{"question_id": qid, "votes": q.votes if q else 0, "voted": True}]
        return [vote_many(ctx, event_id, [r])[0] if i in parsed else results[i] for i, r in enumerate(requests)]  # type: ignore[misc]
    return results  # type: ignore[return-value]


def _vote_group(
    db: Session,
    event_id: int,
    requests: list[VoteRequest],
    parsed: dict[int, tuple[int, bool]],
    results: list[dict[str, Any] | DomainError | None],
) -> None:
    ids = {qid for qid, _up in parsed.values()}
    rows = db.exec(
        select(Question, Segment)
        .join(Segment, col(Segment.id) == col(Question.segment_id))
        .where(col(Question.id).in_(ids), Question.event_id == event_id)
    ).all()
    found = {q.id: (q, seg) for q, seg in rows}
    pairs = {(requests[i].viewer_id, qid) for i, (qid, _up) in parsed.items()}
    held = db.exec(
        select(Vote.viewer_id, Vote.question_id).where(sa.tuple_(Vote.viewer_id, Vote.question_id).in_(pairs))
    ).all()
    voted: set[tuple[str, int]] = {(v, q) for v, q in held}
    start = set(voted)  # the rows as they were: the group's end state is written against them
    answer: dict[int, tuple[int, bool]] = {}
    for i, (qid, up) in parsed.items():
        q_seg = found.get(qid)
        if q_seg is None or not in_feed(q_seg[0].status, q_seg[0].feed_hidden):
            results[i] = NotFound("question.unknown", f"there is no question {qid} on the feed")
            continue
        if q_seg[1].status != "live":
            results[i] = Conflict("vote.closed", "voting has closed: this question's segment is not live")
            continue
        key = (requests[i].viewer_id, qid)
        if up and key not in voted:
            voted.add(key)
        elif not up and key in voted:
            voted.discard(key)
        answer[i] = (qid, up)
    # The counts move by what the database did, not by what was read: a vote taken back
    # through two hubs at once is deleted (and counted) once; a vote given twice fails on
    # the unique constraint (IntegrityError: the caller goes one by one).
    step: Counter[int] = Counter()
    gone = start - voted
    if gone:
        deleted = db.exec(  # type: ignore[call-overload]
            sa.delete(Vote)
            .where(sa.tuple_(Vote.viewer_id, Vote.question_id).in_(gone))
            .returning(col(Vote.question_id))
        ).all()
        step.subtract(qid for (qid,) in deleted)
    new = voted - start
    if new:
        db.add_all([Vote(question_id=qid, viewer_id=viewer) for viewer, qid in sorted(new)])
        db.flush()
        step.update(qid for _viewer, qid in new)
    for qid, n in sorted(step.items()):
        if n:
            _add(db, qid, n)
    counts = dict(db.exec(select(Question.id, Question.votes).where(col(Question.id).in_(ids))).all())
    for i, (qid, up) in answer.items():
        results[i] = {"question_id": qid, "votes": counts.get(qid, 0), "voted": up}


def _add(db: Session, qid: int, step: int) -> None:
    db.exec(sa.update(Question).where(col(Question.id) == qid).values(votes=col(Question.votes) + step))  # type: ignore[call-overload]


def publish_votes(ctx: Context, event_id: int, ids: Iterable[int]) -> int:
    """Announce the current counts of the questions ``ids`` (voted on lately): to the
    feed (those still on it), the moderators, and each studio's host display. Returns
    how many counts went out."""
    wanted = sorted(set(ids))
    if not wanted:
        return 0
    with ctx.transaction() as (db, outbox):
        rows = db.exec(select(Question).where(col(Question.id).in_(wanted), Question.event_id == event_id)).all()
        counts = {str(q.id): q.votes for q in rows}
        if not counts:
            return 0
        payload = {"votes": counts}
        outbox.add(event_id, channels.MODERATION, "votes.changed", payload)
        public = {str(q.id): q.votes for q in rows if in_feed(q.status, q.feed_hidden)}
        if public:
            outbox.add(event_id, channels.FEED, "votes.changed", {"votes": public})
        by_studio: dict[int, dict[str, int]] = {}
        for q in rows:
            by_studio.setdefault(q.studio_id, {})[str(q.id)] = q.votes
        for studio_id, studio_counts in by_studio.items():
            outbox.add(event_id, channels.studio(studio_id), "votes.changed", {"votes": studio_counts})
        return len(counts)


# ── the languages the feed is read in ───────────────────────────────────────
def _languages_key(prefix: str, event_id: int) -> str:
    return f"{prefix}:feed:languages:{event_id}"


def report_languages(client: redis.Redis, prefix: str, event_id: int, hub_id: str, counts: Counter[str]) -> None:
    """A hub's count of its viewers per feed language, kept LANGUAGE_REPORT_TTL seconds
    (a hub that dies stops counting): one hash per hub, named in a sorted set by time."""
    key = f"{_languages_key(prefix, event_id)}:{hub_id}"
    pipe = client.pipeline(transaction=True)
    pipe.delete(key)
    live: dict[str | bytes, str | bytes] = {lang: str(n) for lang, n in counts.items() if n > 0}
    if live:
        pipe.hset(key, mapping=live)  # type: ignore[arg-type]  # (redis-py's Mapping is invariant in its key)
        pipe.expire(key, LANGUAGE_REPORT_TTL)
    now = time.time()
    pipe.zadd(_languages_key(prefix, event_id), {hub_id: now})
    pipe.zremrangebyscore(_languages_key(prefix, event_id), 0, now - LANGUAGE_REPORT_TTL)
    pipe.execute()


def active_languages(client: redis.Redis, prefix: str, event_id: int, limit: int) -> list[str]:
    """The languages connected viewers read, summed over the hubs that reported
    lately, the most read first, at most ``limit``."""
    hubs = client.zrangebyscore(_languages_key(prefix, event_id), time.time() - LANGUAGE_REPORT_TTL, "+inf")
    pipe = client.pipeline(transaction=False)
    for hub_id in hubs:
        pipe.hgetall(f"{_languages_key(prefix, event_id)}:{hub_id.decode() if isinstance(hub_id, bytes) else hub_id}")
    total: Counter[str] = Counter()
    for counts in pipe.execute() if hubs else []:
        for lang, n in counts.items():
            total[lang.decode() if isinstance(lang, bytes) else lang] += int(n)
    return [lang for lang, _ in sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]
