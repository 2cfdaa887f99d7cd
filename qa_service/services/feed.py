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
from typing import Any

import redis
import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..bus import channels
from ..db.models import Question, Segment, Translation, Vote
from ..domain.errors import Conflict, DomainError, NotFound
from ..domain.lifecycle import PUBLICLY_APPROVED
from ..domain.validation import check_id
from .context import Context, Outbox
from .fanout import in_feed
from .views import feed_item, feed_text

FEED_LIMIT = 500  # questions a feed snapshot holds (the newest; a live segment rarely approves more)
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


def vote(ctx: Context, event_id: int, viewer_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``question.vote``: add (``vote``: true) or take back (false) this viewer's vote.
    Saying the same twice changes nothing. Only a question on the feed of a live segment takes votes."""
    qid = check_id(payload.get("question_id"), field="question_id", code="vote.invalid")
    up = payload.get("vote")
    if not isinstance(up, bool):
        raise DomainError("vote.invalid", "'vote' must be true (vote) or false (take the vote back)")
    try:
        return _vote(ctx, event_id, viewer_id, qid, up)
    except sa.exc.IntegrityError:
        # The same viewer's vote raced in through another socket (unique constraint): it stands.
        with ctx.read() as db:
            q = db.get(Question, qid)
            return {"question_id": qid, "votes": q.votes if q else 0, "voted": True}


def _vote(ctx: Context, event_id: int, viewer_id: str, qid: int, up: bool) -> dict[str, Any]:
    with ctx.transaction() as (db, _outbox):
        q = db.get(Question, qid)
        if q is None or q.event_id != event_id or not in_feed(q.status, q.feed_hidden):
            raise NotFound("question.unknown", f"there is no question {qid} on the feed")
        segment = db.get(Segment, q.segment_id)
        if segment is None or segment.status != "live":
            raise Conflict("vote.closed", "voting has closed: this question's segment is not live")
        mine = col(Vote.question_id) == qid, col(Vote.viewer_id) == viewer_id
        if up:
            if db.exec(select(Vote.id).where(*mine)).first() is None:
                db.add(Vote(question_id=qid, viewer_id=viewer_id))
                db.flush()  # a second vote of this viewer fails here (IntegrityError), before the count moves
                _add(db, qid, +1)
        elif db.exec(sa.delete(Vote).where(*mine)).rowcount:  # type: ignore[call-overload]
            _add(db, qid, -1)
        db.refresh(q)
        return {"question_id": qid, "votes": q.votes, "voted": up}


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


def publish_texts(outbox: Outbox, q: Question, rows: list[Translation]) -> None:
    """New texts of a question on the feed, each on its language's channel."""
    assert q.id is not None
    for t in rows:
        outbox.add(q.event_id, channels.feed_texts(t.language), "feed.text", feed_text(q.id, t))
