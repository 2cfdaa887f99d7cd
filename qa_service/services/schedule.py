"""Segments go live and end by the clock, or by a moderator's hand."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import select

from ..bus import channels
from ..db.models import ModerationAction, Segment
from ..domain.errors import DomainError, NotFound
from .context import Context, Outbox
from .views import segment_view

SEGMENT_STATUSES = ("upcoming", "live", "ended")


def clock_status(segment: Segment, now: datetime) -> str:
    if now < segment.starts_at:
        return "upcoming"
    if now < segment.ends_at:
        return "live"
    return "ended"


def _changed(outbox: Outbox, seg: Segment) -> None:
    """Bump the (row-locked) segment's version and announce it: the version lets a
    client drop a segment.updated older than what it holds."""
    seg.version += 1
    view = segment_view(seg)
    outbox.add(seg.event_id, channels.SCHEDULE, "segment.updated", view)
    outbox.add(seg.event_id, channels.MODERATION, "segment.updated", view)


def tick(ctx: Context, event_id: int, now: datetime) -> list[int]:
    """Move segments the clock governs to their status now. Safe from many hubs:
    each change is a compare-and-set on the old status."""
    changed: list[int] = []
    with ctx.transaction() as (db, outbox):
        segments = db.exec(
            select(Segment)
            .where(Segment.event_id == event_id, Segment.status_manual == False)  # noqa: E712
            .with_for_update()
        ).all()
        for seg in segments:
            want = clock_status(seg, now)
            if want != seg.status:
                seg.status = want
                _changed(outbox, seg)
                db.add(seg)
                assert seg.id is not None
                changed.append(seg.id)
        db.flush()
    return changed


def set_status(
    ctx: Context, event_id: int, segment_id: int, status: str, actor: str, *, manual: bool = True
) -> dict[str, Any]:
    """A moderator sets a segment live or ended (or hands it back to the clock)."""
    if status not in SEGMENT_STATUSES and status != "auto":
        raise DomainError("segment.status_invalid", f"status must be one of {SEGMENT_STATUSES} or 'auto'")
    with ctx.transaction() as (db, outbox):
        seg = db.exec(
            select(Segment).where(Segment.id == segment_id, Segment.event_id == event_id).with_for_update()
        ).first()
        if seg is None:
            raise NotFound("segment.unknown", f"there is no segment {segment_id}")
        before = segment_view(seg)
        if status == "auto":
            seg.status_manual = False
        else:
            seg.status, seg.status_manual = status, manual
        _changed(outbox, seg)
        db.add(seg)
        db.add(
            ModerationAction(
                event_id=event_id,
                segment_id=seg.id,
                actor=actor,
                action=f"segment.{status}",
                before=before,
                after=segment_view(seg),
            )
        )
        db.flush()
        return segment_view(seg)
