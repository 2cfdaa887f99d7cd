"""The report of the loaded event for staff (the /report page, GET /api/report).

One read transaction (on PostgreSQL a repeatable-read snapshot, so every figure
comes from the same moment; on SQLite a WAL snapshot) of GROUP BY queries: the
database counts, Python only arranges a bounded number of groups. The one list
that grows with the event is the ask → on air times (a float per question that
went on air), which a percentile needs.

Where a question stands is its status now: the funnel is a partition of the
questions asked (pending + rejected + merged + approved or beyond), and "on air"
counts the questions on air or answered. Times come from the moderation log: a
question's first ``on_air`` action. Questions hidden because their asker was
banned (reject reason ``hidden``) never reached a moderator and are left out of
every figure but ``funnel.hidden``. The workload counts rows of the moderation log
by the people who made them (the studios' host displays counted apart, the event
loader's changes not at all): approving into the queue is an ``approve`` row and
an ``enqueue`` row.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..db.models import Event, ModerationAction, Question, Segment, Speaker, Studio, utcnow
from ..domain.errors import NotFound
from ..domain.lifecycle import HIDDEN, Status
from .context import Context
from .views import iso

TOP_SPEAKERS = 20  # bars of the per-speaker chart; the rest is "other"
TOP_LANGUAGES = 10
TOP_COUNTRIES = 15
TIMELINE_LANGUAGES = 5  # series of the timeline by language; the rest is "other"
TOP_VOTED = 10
TOP_ACTORS = 12  # moderators shown by name in the workload; the rest is "other"
MAX_BUCKETS = 120  # points of a timeline: the bucket grows with the span
TIMELINE_MINUTES = (10, 15, 30, 60, 120, 240, 480, 720, 1440)
HOURLY_MINUTES = (60, 120, 240, 480, 720, 1440)
# Histogram of ask → on air, in minutes: [0, 2), [2, 5), ... [120, ∞).
AIR_EDGES_MINUTES = (0, 2, 5, 10, 15, 30, 60, 120)
HOST_ACTOR = "host:"  # actions of a studio's host display (hub/endpoints.py)
# Machine actors name themselves "kind:who" (host:moscow, cli:event-load); a staff
# username never holds a colon (security.py): people are the actors without one.
MACHINE_MARK = ":"
OTHER = "other"
# The moderation log's actions, by the kind of work they are.
KINDS: dict[str, str] = {
    "approve": "approve",
    "reject": "reject",
    "merge": "merge",
    "enqueue": "queue",
    "dequeue": "queue",
    "reorder": "queue",
    "on_air": "air",
    "skip": "air",
    "answer": "air",
    "edit_translation": "translation",
    "retranslate": "translation",
    "undo": "undo",
}
KIND_ORDER = ("approve", "reject", "merge", "queue", "air", "translation", "undo", OTHER)
ON_AIR_OR_AFTER = (Status.on_air.value, Status.answered.value)
APPROVED_OR_AFTER = (Status.approved.value, Status.queued.value, *ON_AIR_OR_AFTER)


# ── pure helpers ───────────────────────────────────────────────────────────
def bucket_minutes(span: timedelta, choices: Sequence[int] = TIMELINE_MINUTES, limit: int = MAX_BUCKETS) -> int:
    """The smallest bucket of ``choices`` that covers ``span`` in at most ``limit`` buckets."""
    for minutes in choices:
        if span.total_seconds() <= minutes * 60 * limit:
            return minutes
    return math.ceil(span.total_seconds() / 60 / limit / choices[-1]) * choices[-1]


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of sorted ``values`` (p90: the smallest value that 90%
    of them do not exceed); None for none."""
    if not values:
        return None
    return values[max(0, math.ceil(fraction * len(values)) - 1)]


def histogram(minutes: Iterable[float], edges: Sequence[int] = AIR_EDGES_MINUTES) -> list[dict[str, Any]]:
    """Counts per [edges[i], edges[i+1]) minutes; the last bin is open-ended."""
    counts = [0] * len(edges)
    for m in minutes:
        i = len(edges) - 1
        while i > 0 and m < edges[i]:
            i -= 1
        counts[i] += 1
    return [
        {"from_minutes": lo, "to_minutes": edges[i + 1] if i + 1 < len(edges) else None, "count": counts[i]}
        for i, lo in enumerate(edges)
    ]


def top(counts: dict[str, int], n: int) -> dict[str, Any]:
    """The ``n`` biggest groups (ties by key), and the sum of the rest."""
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"items": [{"key": k, "count": c} for k, c in ordered[:n]], OTHER: sum(c for _, c in ordered[n:])}


def kind_of(action: str) -> str:
    return KINDS.get(action, OTHER)


# ── SQL ────────────────────────────────────────────────────────────────────
def _epoch(db: Session, column: Any) -> Any:
    """Whole seconds since 1970 of a naive UTC timestamp column, in SQL."""
    if db.get_bind().dialect.name == "sqlite":
        return sa.cast(sa.func.strftime("%s", column), sa.BigInteger)
    return sa.cast(sa.func.floor(sa.extract("epoch", column)), sa.BigInteger)


def _bucket(db: Session, column: Any, start: datetime, minutes: int) -> Any:
    """The index of ``column``'s bucket of ``minutes`` counted from ``start`` (a bucket edge)."""
    return (_epoch(db, column) - int(_to_epoch(start))) // (minutes * 60)  # integers: SQL integer division


def _to_epoch(dt: datetime) -> float:
    return (dt - datetime(1970, 1, 1)).total_seconds()


def _edge(dt: datetime, minutes: int) -> datetime:
    """``dt`` rounded down to a multiple of ``minutes`` since 1970 (UTC)."""
    seconds = int(_to_epoch(dt)) // (minutes * 60) * (minutes * 60)
    return datetime(1970, 1, 1) + timedelta(seconds=seconds)


def _visible(event_id: int) -> Any:
    return sa.and_(
        col(Question.event_id) == event_id,
        sa.or_(col(Question.reject_reason).is_(None), col(Question.reject_reason) != HIDDEN),
    )


def _count(db: Session, where: Any) -> int:
    return int(db.exec(select(sa.func.count()).select_from(Question).where(where)).one())  # type: ignore[call-overload]


def _grouped(db: Session, key: Any, where: Any) -> dict[Any, int]:
    rows = db.exec(select(key, sa.func.count()).where(where).group_by(key)).all()  # type: ignore[call-overload]
    return {k: int(n) for k, n in rows}


def build(ctx: Context, event_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """The report of event ``event_id`` (see the module's docstring)."""
    now = now or utcnow()
    with ctx.read() as db:
        if db.get_bind().dialect.name == "postgresql":  # one snapshot for every query below
            db.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        event = db.get(Event, event_id)
        if event is None:
            raise NotFound("event.unknown", f"there is no event {event_id}")
        return _report(db, event, now)


def _report(db: Session, event: Event, now: datetime) -> dict[str, Any]:
    assert event.id is not None
    event_id = event.id
    visible = _visible(event_id)
    studios = list(db.exec(select(Studio).where(Studio.event_id == event_id).order_by(col(Studio.id))))
    segments = list(db.exec(select(Segment).where(Segment.event_id == event_id)))
    speakers = list(
        db.exec(
            select(Speaker, Segment.studio_id)
            .join(Segment, col(Segment.id) == col(Speaker.segment_id))
            .where(Segment.event_id == event_id)
            .order_by(col(Speaker.id))
        )
    )

    by_status = _grouped(db, Question.status, visible)
    asked = sum(by_status.values())
    hidden = _count(db, sa.and_(col(Question.event_id) == event_id, col(Question.reject_reason) == HIDDEN))
    funnel = {
        "asked": asked,
        "approved": sum(by_status.get(s, 0) for s in APPROVED_OR_AFTER),
        "on_air": sum(by_status.get(s, 0) for s in ON_AIR_OR_AFTER),
        "answered": by_status.get(Status.answered.value, 0),
        "pending": by_status.get(Status.pending.value, 0),
        "rejected": by_status.get(Status.rejected.value, 0),
        "merged": by_status.get(Status.merged.value, 0),
        "hidden": hidden,
    }

    per_studio = _grouped(db, Question.studio_id, visible)
    per_speaker = _grouped(db, Question.speaker_id, visible)
    speaker_rows = sorted(
        (
            {"id": sp.id, "name": sp.name, "studio_id": studio_id, "count": per_speaker.get(sp.id, 0)}
            for sp, studio_id in speakers
        ),
        key=lambda r: (-int(r["count"] or 0), r["id"]),
    )
    languages = top({str(k): n for k, n in _grouped(db, Question.language, visible).items()}, TOP_LANGUAGES)
    countries_all = _grouped(db, Question.country, visible)
    unknown = countries_all.pop(None, 0)
    countries = top({str(k): n for k, n in countries_all.items()}, TOP_COUNTRIES) | {"unknown": unknown}

    first, last, votes, askers = db.exec(
        select(
            sa.func.min(Question.created_at),
            sa.func.max(Question.created_at),
            sa.func.coalesce(sa.func.sum(Question.votes), 0),
            sa.func.count(sa.distinct(col(Question.viewer_id))),
        ).where(visible)
    ).one()
    marathon_start = min((s.starts_at for s in segments), default=None)
    marathon_end = max((s.ends_at for s in segments), default=None)
    running = any(s.status == "live" for s in segments) or (
        marathon_start is not None and marathon_end is not None and marathon_start <= now < marathon_end
    )

    return {
        "generated_at": iso(now),
        "event": {"id": event_id, "slug": event.slug, "name": event.name},
        "running": running,
        "marathon": {"starts_at": iso(marathon_start), "ends_at": iso(marathon_end)},
        "totals": {"questions": asked, "askers": int(askers), "votes": int(votes)},
        "studios": [
            {"id": s.id, "name": s.name, "city": s.city, "count": per_studio.get(s.id or 0, 0)} for s in studios
        ],
        "speakers": {
            "items": speaker_rows[:TOP_SPEAKERS],
            OTHER: sum(r["count"] for r in speaker_rows[TOP_SPEAKERS:]),
        },
        "languages": languages,
        "countries": countries,
        "timeline": _timeline(db, visible, studios, languages, first, last, marathon_start, marathon_end, now),
        "funnel": funnel,
        "time_to_air": _time_to_air(db, visible),
        "most_voted": _most_voted(db, visible),
        "workload": _workload(db, event_id),
    }


def _timeline(
    db: Session,
    visible: Any,
    studios: list[Studio],
    languages: dict[str, Any],
    first: datetime | None,
    last: datetime | None,
    marathon_start: datetime | None,
    marathon_end: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    """Questions asked per bucket across the marathon (its first segment's start to its
    last one's end, or now while it runs), per studio and per language."""
    starts = [t for t in (first, marathon_start) if t is not None]
    if not starts:
        return {"start": None, "bucket_minutes": TIMELINE_MINUTES[0], "labels": [], "studios": [], "languages": []}
    end_of_marathon = min(marathon_end, now) if marathon_end is not None else now
    begin = min(starts)
    end = max(t for t in (last, end_of_marathon, begin) if t is not None)
    minutes = bucket_minutes(end - begin)
    begin = _edge(begin, minutes)
    n = int((end - begin).total_seconds() // (minutes * 60)) + 1
    bucket = _bucket(db, Question.created_at, begin, minutes)
    per_studio: dict[int, list[int]] = {s.id: [0] * n for s in studios if s.id is not None}
    top_languages = [item["key"] for item in languages["items"][:TIMELINE_LANGUAGES]]
    per_language: dict[str, list[int]] = {lang: [0] * n for lang in [*top_languages, OTHER]}
    rows = db.exec(
        select(Question.studio_id, Question.language, bucket, sa.func.count())  # type: ignore[call-overload]
        .where(visible)
        .group_by(col(Question.studio_id), col(Question.language), bucket)
    ).all()
    for studio_id, language, index, count in rows:
        i = int(index)
        if 0 <= i < n:
            if studio_id in per_studio:
                per_studio[studio_id][i] += int(count)
            per_language[language if language in top_languages else OTHER][i] += int(count)
    return {
        "start": iso(begin),
        "bucket_minutes": minutes,
        "labels": [iso(begin + timedelta(minutes=minutes * i)) for i in range(n)],
        "studios": [{"studio_id": sid, "counts": counts} for sid, counts in per_studio.items()],
        "languages": [{"key": k, "counts": c} for k, c in per_language.items() if k != OTHER or any(c)],
    }


def _time_to_air(db: Session, visible: Any) -> dict[str, Any]:
    """From ask to the first time on air, for the questions on air or answered now."""
    first_on_air = sa.func.min(ModerationAction.created_at)
    rows = db.exec(
        select(Question.created_at, first_on_air)  # type: ignore[call-overload]
        .join(ModerationAction, col(ModerationAction.question_id) == col(Question.id))
        .where(visible, col(Question.status).in_(ON_AIR_OR_AFTER), ModerationAction.action == "on_air")
        .group_by(col(Question.id), col(Question.created_at))
    ).all()
    seconds = sorted(max(0.0, (aired - asked).total_seconds()) for asked, aired in rows)
    return {
        "count": len(seconds),
        "median_seconds": statistics.median(seconds) if seconds else None,
        "p90_seconds": percentile(seconds, 0.9),
        "histogram": histogram(s / 60 for s in seconds),
    }


def _most_voted(db: Session, visible: Any) -> list[dict[str, Any]]:
    """The audience's favourites: staff only (the texts are the askers')."""
    rows = db.exec(
        select(Question)
        .where(visible, Question.votes > 0)
        .order_by(col(Question.votes).desc(), col(Question.id))
        .limit(TOP_VOTED)
    ).all()
    return [
        {
            "id": q.id,
            "text": q.text,
            "language": q.language,
            "votes": q.votes,
            "status": q.status,
            "speaker_id": q.speaker_id,
            "studio_id": q.studio_id,
        }
        for q in rows
    ]


def _workload(db: Session, event_id: int) -> dict[str, Any]:
    """Rows of the moderation log per moderator and kind, and per moderator and hour."""
    staff = sa.and_(col(ModerationAction.event_id) == event_id, ~col(ModerationAction.actor).contains(MACHINE_MARK))
    rows = db.exec(
        select(ModerationAction.actor, ModerationAction.action, sa.func.count())  # type: ignore[call-overload]
        .where(staff)
        .group_by(col(ModerationAction.actor), col(ModerationAction.action))
    ).all()
    hosts = db.exec(
        select(sa.func.count()).where(  # type: ignore[call-overload]
            col(ModerationAction.event_id) == event_id, col(ModerationAction.actor).startswith(HOST_ACTOR)
        )
    ).one()
    by_actor: dict[str, dict[str, int]] = {}
    for actor, action, count in rows:
        kinds = by_actor.setdefault(actor, dict.fromkeys(KIND_ORDER, 0))
        kinds[kind_of(action)] += int(count)
    ordered = sorted(by_actor, key=lambda a: (-sum(by_actor[a].values()), a))
    named = ordered[:TOP_ACTORS]
    moderators = [{"actor": a, "total": sum(by_actor[a].values()), "by_kind": by_actor[a]} for a in named]
    if len(ordered) > TOP_ACTORS:
        rest = dict.fromkeys(KIND_ORDER, 0)
        for a in ordered[TOP_ACTORS:]:
            for k, v in by_actor[a].items():
                rest[k] += v
        moderators.append({"actor": None, "total": sum(rest.values()), "by_kind": rest})

    first, last = db.exec(
        select(sa.func.min(ModerationAction.created_at), sa.func.max(ModerationAction.created_at)).where(staff)
    ).one()
    hours: dict[str, Any] = {"start": None, "bucket_minutes": HOURLY_MINUTES[0], "labels": [], "moderators": []}
    if first is not None and last is not None:
        minutes = bucket_minutes(last - first, HOURLY_MINUTES)
        begin = _edge(first, minutes)
        n = int((last - begin).total_seconds() // (minutes * 60)) + 1
        bucket = _bucket(db, ModerationAction.created_at, begin, minutes)
        series: dict[str | None, list[int]] = {a: [0] * n for a in named}
        for actor, index, count in db.exec(
            select(ModerationAction.actor, bucket, sa.func.count())  # type: ignore[call-overload]
            .where(staff)
            .group_by(col(ModerationAction.actor), bucket)
        ).all():
            key = actor if actor in series else None
            series.setdefault(key, [0] * n)
            if 0 <= int(index) < n:
                series[key][int(index)] += int(count)
        hours = {
            "start": iso(begin),
            "bucket_minutes": minutes,
            "labels": [iso(begin + timedelta(minutes=minutes * i)) for i in range(n)],
            "moderators": [{"actor": a, "counts": c} for a, c in series.items()],
        }
    return {"kinds": list(KIND_ORDER), "moderators": moderators, "hosts": int(hosts), "per_hour": hours}
