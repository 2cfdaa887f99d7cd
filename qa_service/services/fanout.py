"""Turn a question change into bus events, by audience. The only place that
decides which channel hears about which question."""

from __future__ import annotations

from sqlmodel import Session

from ..bus import channels
from ..db.models import Question
from ..domain.lifecycle import HOST_VISIBLE, Status
from .context import Outbox
from .views import host_question, moderator_question, translations_of, viewer_question


def question_changed(
    db: Session, outbox: Outbox, q: Question, *, old_status: str | None, created: bool = False
) -> None:
    assert q.id is not None
    translations = [] if created else translations_of(db, [q.id])[q.id]  # a new question has none yet
    kind = "question.created" if created else "question.updated"
    outbox.add(q.event_id, channels.MODERATION, kind, moderator_question(q, translations))
    outbox.add(q.event_id, channels.viewer(q.viewer_id), kind, viewer_question(q))
    new_visible = Status(q.status) in HOST_VISIBLE
    old_visible = old_status is not None and Status(old_status) in HOST_VISIBLE
    if new_visible:
        outbox.add(q.event_id, channels.studio(q.studio_id), "queue.upsert", host_question(q, translations))
    elif old_visible:
        outbox.add(q.event_id, channels.studio(q.studio_id), "queue.remove", {"id": q.id})


def queue_order(outbox: Outbox, event_id: int, studio_id: int, order: list[int], version: int) -> None:
    """The full order of a studio's queue; ``version`` (the studio's queue_version)
    lets a client drop an order older than the one it holds."""
    payload = {"studio_id": studio_id, "order": order, "version": version}
    outbox.add(event_id, channels.studio(studio_id), "queue.order", payload)
    outbox.add(event_id, channels.MODERATION, "queue.order", payload)
