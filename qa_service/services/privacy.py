"""Data hygiene: forgetting one viewer on request, and purging whole events once
their retention period (``QA_RETENTION_DAYS``) is over.

Forgetting deletes the viewer's questions with their translations and the audit
rows about them (those hold the text, before and after a moderator's edit), and
the viewer's bans. Other viewers' questions merged into a forgotten one stay,
detached (``merged_into`` empty): their askers see them approved, as merged. Screens learn of it as of any change: the
studio's queue loses the question (``queue.remove``, ``queue.order``), and the
moderation and viewer channels get a ``channel.stale`` marker, so those sockets
resync from the database. The bus history (Redis streams) and the translation
cache drop their copies of the text after the commit.

Address bans are not the viewer's: they name a keyed hash of an address, not a
person, and expire by themselves (``QA_ADDRESS_BAN_MINUTES``).
"""

from __future__ import annotations

import functools
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..bus import channels
from ..bus.redis_bus import STALE, Keys, topic
from ..db.models import (
    AddressBan,
    Ban,
    Event,
    HostLink,
    ModerationAction,
    Question,
    Segment,
    Speaker,
    Studio,
    Translation,
    Vote,
    utcnow,
)
from ..domain.errors import NotFound
from ..domain.lifecycle import HOST_VISIBLE, Status
from . import fanout, feed
from .context import OUTAGE_ERRORS, Context
from .merges import descendants
from .questions import lock_studio, queued_in

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Forgotten:
    questions: int
    translations: int
    audit_rows: int
    bans: int


def forget_viewer(ctx: Context, viewer_id: str) -> Forgotten:
    """Delete everything stored about one viewer (see the module docstring). Idempotent."""
    with ctx.transaction() as (db, outbox):
        asked, studios = _lock_asked(db, viewer_id)
        ids = [q.id for q in asked if q.id is not None]
        shown = {(q.event_id, q.studio_id) for q in asked if Status(q.status) in HOST_VISIBLE}
        cache_keys = _cache_keys(ctx, db, asked)
        # Others' questions merged into these: their askers no longer follow them.
        followers = sorted({f for found in descendants(db, ids).values() for f in found} - set(ids))
        kept = {q.merged_into_id for q in asked if q.status == Status.merged.value} - {None, *ids}
        db.exec(  # type: ignore[call-overload]
            sa.update(Question).where(col(Question.merged_into_id).in_(ids)).values(merged_into_id=None)
        )
        # The feed sent each text on its language's channel: those histories are scrubbed too.
        read_in = set(db.exec(select(Translation.language).where(col(Translation.question_id).in_(ids))))
        translations = _delete(db, Translation, col(Translation.question_id).in_(ids))
        voted = _forget_votes(db, viewer_id, ids)
        audit = _delete(db, ModerationAction, col(ModerationAction.question_id).in_(ids))
        bans = _delete(db, Ban, col(Ban.viewer_id) == viewer_id)
        _delete(db, Question, col(Question.id).in_(ids))
        if followers:
            fanout.followers_changed(db, outbox, followers)
        if kept:  # fewer questions merged into these now
            fanout.merges_changed(db, outbox, sorted(k for k in kept if k is not None))

        removed: dict[int, list[int | None]] = defaultdict(list)
        for q in asked:
            if Status(q.status) in HOST_VISIBLE:
                removed[q.studio_id].append(q.id)
        for studio in studios:
            assert studio.id is not None
            if (studio.event_id, studio.id) not in shown:
                continue  # its host screen never showed them, or no longer does: nothing to take off
            for qid in removed[studio.id]:
                outbox.add(studio.event_id, channels.studio(studio.id), "queue.remove", {"id": qid})
            studio.queue_version += 1
            db.add(studio)
            order = [x.id for x in queued_in(db, studio.id) if x.id]
            fanout.queue_order(outbox, studio.event_id, studio.id, order, studio.queue_version)
        touched = []
        # The public feed showed the approved ones (texts in every language it is read in).
        for q in asked:
            if fanout.in_feed(q.status, q.feed_hidden):
                outbox.add(q.event_id, channels.FEED, "feed.remove", {"id": q.id})
        for event_id in sorted({q.event_id for q in asked}):
            touched += [(event_id, channels.FEED), *((event_id, channels.feed_texts(lang)) for lang in sorted(read_in))]
        for event_id in sorted({q.event_id for q in asked}):
            for channel in (channels.MODERATION, channels.viewer(viewer_id)):
                outbox.add(event_id, channel, STALE, {})
                touched.append((event_id, channel))
        # Every studio the questions were asked in: one queued once and since dequeued,
        # rejected or merged left its text in that studio's history (queue.upsert).
        touched += [(event_id, channels.studio(studio_id)) for event_id, studio_id in _studios_of(asked)]
        if touched:
            outbox.after_commit.append(functools.partial(_scrub_bus, ctx, touched, set(ids), cache_keys))
        if voted:  # the counts of the questions this viewer had voted for went down
            outbox.after_commit.append(functools.partial(_announce_votes, ctx, voted))
    if ids:
        log.info("forgot viewer %s: %d question(s), %d ban(s)", viewer_id[:8], len(ids), bans)
    return Forgotten(len(ids), translations, audit, bans)


def _studios_of(asked: list[Question]) -> list[tuple[int, int]]:
    return sorted({(q.event_id, q.studio_id) for q in asked})


def _lock_asked(db: Session, viewer_id: str) -> tuple[list[Question], list[Studio]]:
    """The viewer's questions, locked until commit, and the studios they were asked in.

    The studios first (``lock_studio``: FOR NO KEY UPDATE, in the order questions.py
    keeps: studio before question), so a moderator's action in them waits; then the
    questions, re-selected FOR UPDATE, so a worker storing a translation or a merge
    into one of them waits too, and finds them gone instead of a foreign-key error
    ending this transaction. A question asked meanwhile in another studio: that
    studio is locked as well and the questions selected again."""
    where = col(Question.viewer_id) == viewer_id
    wanted = set(db.exec(sa.select(col(Question.event_id), col(Question.studio_id)).where(where)).all())  # type: ignore[call-overload]
    studios: dict[tuple[int, int], Studio] = {}
    tried: set[tuple[int, int]] = set()
    while True:
        for event_id, studio_id in sorted(wanted - tried):
            tried.add((event_id, studio_id))
            try:
                studios[(event_id, studio_id)] = lock_studio(db, event_id, studio_id)
            except NotFound:
                continue  # purged meanwhile, with its questions
        asked = list(
            db.exec(
                select(Question)
                .where(where)
                .order_by(col(Question.id))
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        )
        wanted = set(_studios_of(asked))
        if wanted <= tried:
            return asked, [studios[key] for key in sorted(studios)]


def _delete(db: Session, table: type, where: sa.ColumnElement[bool]) -> int:
    result = db.exec(sa.delete(table).where(where))  # type: ignore[call-overload]
    return int(result.rowcount or 0)


def _cache_keys(ctx: Context, db: Session, asked: list[Question]) -> list[str]:
    """Every key the translation cache may hold these questions' machine translations
    under: (route version, text), as workers.translate forms them. A moderator's edit
    empties a translation's ``model_version`` and a re-translation deletes the row, so
    the route versions are derived: from each source language the question had (now,
    and before a re-translation, in its audit rows), every route the stored machine
    translations' model versions make up, direct or through the pivot language."""
    from workers.planner import PIVOT
    from workers.translate import _cache_key  # the workers' one definition of the key

    if not asked:
        return []
    ids = [q.id for q in asked]
    # Each leg of a route version ("es-en@1.9#ab12+en-ru@1.9#cd34") by its pair ("es-en").
    legs: dict[str, set[str]] = defaultdict(set)
    stored = db.exec(sa.select(col(Translation.model_version)).where(col(Translation.model_version) != "").distinct())  # type: ignore[call-overload]
    for (version,) in stored.all():
        for leg in str(version).split("+"):
            legs[leg.split("@", 1)[0]].add(leg)
    sources: dict[int | None, set[str]] = {q.id: {q.language} for q in asked}
    audit = db.exec(select(ModerationAction).where(col(ModerationAction.question_id).in_(ids))).all()
    for row in audit:
        for snapshot in (row.before, row.after):
            language = snapshot.get("language") if isinstance(snapshot, dict) and row.action == "retranslate" else None
            if isinstance(language, str):
                sources[row.question_id].add(language)
    own = db.exec(select(Translation).where(col(Translation.question_id).in_(ids))).all()
    prefix = ctx.settings.redis_prefix
    keys: set[str] = set()
    for q in asked:
        versions = {t.model_version for t in own if t.question_id == q.id and t.model_version}
        for src in sources[q.id]:
            for pair, found in legs.items():
                if pair.startswith(f"{src}-"):
                    versions |= found  # direct
            for first in legs.get(f"{src}-{PIVOT}", ()):
                for pair, found in legs.items():
                    if pair.startswith(f"{PIVOT}-"):
                        versions |= {f"{first}+{second}" for second in found}  # through the pivot
        keys |= {_cache_key(prefix, version, q.text) for version in versions}
    return sorted(keys)


def _scrub_bus(ctx: Context, touched: list[tuple[int, str]], ids: set[int], cache_keys: list[str]) -> None:
    """After the commit: drop the forgotten questions' events from the channels'
    history (a client replaying across the hole resyncs) and their cached translations."""
    client = ctx.publisher.client
    keys = Keys(ctx.settings.redis_prefix)
    for event_id, channel in touched:
        stream = keys.stream(topic(event_id, channel))
        entries = client.xrange(stream) or []
        gone = [entry_id for entry_id, fields in entries if fields and _payload_id(fields) in ids]
        if gone:
            client.xdel(stream, *gone)  # type: ignore[arg-type]
    if cache_keys:
        client.delete(*cache_keys)


def _payload_id(fields: dict[bytes | str, bytes | str]) -> object:
    """The question an event carries the content of (its text, name, translations), if any."""
    data = json.loads(fields[b"d"])
    if not isinstance(data, dict) or data.get("type") not in _CARRY_CONTENT:
        return None
    payload = data.get("payload")
    return payload.get("id") if isinstance(payload, dict) else None


_CARRY_CONTENT = frozenset({"question.created", "question.updated", "queue.upsert", "feed.upsert", "feed.text"})


def _forget_votes(db: Session, viewer_id: str, ids: list[int]) -> dict[int, list[int]]:
    """Delete the votes on the forgotten questions and the viewer's own votes (taking
    them off the counts); returns the questions whose counts went down, by event."""
    _delete(db, Vote, col(Vote.question_id).in_(ids))
    # The rows this statement removed, not the ones a read saw: a vote given or taken back
    # meanwhile (another socket) is counted by its own transaction, never twice.
    mine = db.exec(  # type: ignore[call-overload]
        sa.delete(Vote).where(col(Vote.viewer_id) == viewer_id).returning(col(Vote.question_id))
    ).all()
    down: dict[int, list[int]] = defaultdict(list)
    for (qid,) in mine:
        db.exec(  # type: ignore[call-overload]
            sa.update(Question).where(col(Question.id) == qid).values(votes=col(Question.votes) - 1)
        )
        q = db.get(Question, qid)
        if q is not None:
            down[q.event_id].append(qid)
    return dict(down)


def _announce_votes(ctx: Context, voted: dict[int, list[int]]) -> None:
    """After the commit: the counts that went down. Best effort (the next vote on those
    questions, or a snapshot, shows them): a failure here undoes nothing that was forgotten."""
    for event_id, ids in voted.items():
        try:
            feed.publish_votes(ctx, event_id, ids)
        except OUTAGE_ERRORS as exc:
            log.warning("vote counts after a forget not announced (%r)", exc)


# ── retention ──────────────────────────────────────────────────────────────
def purge_contacts(ctx: Context, now: datetime | None = None) -> int:
    """Forget the e-mail addresses viewers gave for an answer after the event once their
    event's retention for them (options.contact.retention_days; the default when the
    offer was withdrawn) has passed since its last segment ended. Returns how many."""
    from ..domain.asker import DEFAULT_CONTACT_DAYS

    now = now or utcnow()
    forgotten = 0
    with ctx.read() as db:
        ends = _last_ends(db)
        events = {e.id: e for e in db.exec(select(Event))}
    for event_id, last in ends:
        event = events.get(event_id)
        days = (event.options.get("contact") or {}).get("retention_days", DEFAULT_CONTACT_DAYS) if event else 0
        if last + timedelta(days=days) > now:
            continue
        with ctx.transaction() as (db, _):
            result = db.exec(  # type: ignore[call-overload]
                sa.update(Question)
                .where(col(Question.event_id) == event_id, col(Question.contact_email).is_not(None))
                .values(contact_email=None, contact_consent_at=None)
            )
            forgotten += int(result.rowcount or 0)
    if forgotten:
        log.info("retention: forgot %d contact address(es) given for answers after the event", forgotten)
    return forgotten


def purge(ctx: Context, days: int, now: datetime | None = None) -> list[str]:
    """Delete every event whose last segment ended more than ``days`` days ago, with
    all its rows; returns their slugs. Each event goes in a transaction of its own."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    with ctx.read() as db:
        due = [event_id for event_id, last in _last_ends(db) if last < cutoff]
    purged = []
    for event_id in due:
        slug = _purge_event(ctx, event_id, cutoff)
        if slug is not None:
            purged.append(slug)
            log.info("purged event %s (ended before %s)", slug, cutoff.isoformat(timespec="minutes"))
    return purged


def _last_ends(db: Session, event_id: int | None = None) -> list[tuple[int, datetime]]:
    stmt = sa.select(col(Segment.event_id), sa.func.max(col(Segment.ends_at))).group_by(col(Segment.event_id))
    if event_id is not None:
        stmt = stmt.where(col(Segment.event_id) == event_id)
    return [(e, last) for e, last in db.exec(stmt).all()]  # type: ignore[call-overload]


def _purge_event(ctx: Context, event_id: int, cutoff: datetime) -> str | None:
    with ctx.transaction() as (db, outbox):
        # The event's row lock: two hubs purging at once take turns; the second finds nothing.
        event = db.exec(select(Event).where(col(Event.id) == event_id).with_for_update()).first()
        ends = _last_ends(db, event_id)
        if event is None or not ends or ends[0][1] >= cutoff:  # gone, or reloaded with new dates meanwhile
            return None
        questions = sa.select(col(Question.id)).where(col(Question.event_id) == event_id)
        segments = sa.select(col(Segment.id)).where(col(Segment.event_id) == event_id)
        db.exec(  # type: ignore[call-overload]
            sa.update(Question).where(col(Question.event_id) == event_id).values(merged_into_id=None)
        )
        _delete(db, Translation, col(Translation.question_id).in_(questions))
        _delete(db, Vote, col(Vote.question_id).in_(questions))
        _delete(db, ModerationAction, col(ModerationAction.event_id) == event_id)
        _delete(db, Question, col(Question.event_id) == event_id)
        _delete(db, Ban, col(Ban.event_id) == event_id)
        _delete(db, AddressBan, col(AddressBan.event_id) == event_id)
        _delete(db, Speaker, col(Speaker.segment_id).in_(segments))
        _delete(db, Segment, col(Segment.event_id) == event_id)
        studios = sa.select(col(Studio.id)).where(col(Studio.event_id) == event_id)
        _delete(db, HostLink, col(HostLink.studio_id).in_(studios))
        _delete(db, Studio, col(Studio.event_id) == event_id)
        _delete(db, Event, col(Event.id) == event_id)
        outbox.after_commit.append(functools.partial(_drop_history, ctx, event_id))
        return event.slug


def _drop_history(ctx: Context, event_id: int) -> None:
    """The purged event's channels in Redis: history streams and sequence counters."""
    client = ctx.publisher.client
    keys = Keys(ctx.settings.redis_prefix)
    for pattern in (keys.stream(topic(event_id, "*")), keys.seq(topic(event_id, "*"))):
        batch = list(client.scan_iter(match=pattern, count=500))
        if batch:
            client.delete(*batch)
