"""Turn a question change into bus events, by audience. The only place that
decides which channel hears about which question."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from ..bus import channels
from ..db.models import Question, Translation
from ..domain.lifecycle import HOST_VISIBLE, PUBLICLY_APPROVED, Status, viewer_status
from .context import Outbox
from .merges import descendants, followed, kept_chain
from .views import (
    feed_item,
    feed_text,
    host_question,
    moderator_question,
    translations_of,
    viewer_question,
    viewer_questions,
)


def in_feed(status: str | None, hidden: bool) -> bool:
    """Whether a question with this status shows on the public feed."""
    return status is not None and Status(status) in PUBLICLY_APPROVED and not hidden


def question_changed(
    db: Session,
    outbox: Outbox,
    q: Question,
    *,
    old_status: str | None,
    created: bool = False,
    texts_changed: bool | str = False,
    was_in_feed: bool | None = None,
) -> None:
    """A question changed (call after the change is flushed). Its asker, the
    moderators and, once queued, its studio hear of it; so do the askers of the
    questions merged into it when what they see changes (they follow its status),
    and the public feed while it is approved and not hidden. ``texts_changed``:
    its translations changed (a language: only that one); ``was_in_feed``: whether it showed on the feed before
    (default: judged from ``old_status``, for a change that did not hide it)."""
    assert q.id is not None
    translations = [] if created else translations_of(db, [q.id])[q.id]  # a new question has none yet
    merged_ids = [] if created else descendants(db, [q.id])[q.id]  # nothing is merged into a new one
    kind = "question.created" if created else "question.updated"
    outbox.add(q.event_id, channels.MODERATION, kind, moderator_question(q, translations, merged_ids))
    kept = followed(db, [q]).get(q.id) if q.status == Status.merged.value else None
    outbox.add(q.event_id, channels.viewer(q.viewer_id), kind, viewer_question(q, kept))
    new_visible = Status(q.status) in HOST_VISIBLE
    old_visible = old_status is not None and Status(old_status) in HOST_VISIBLE
    if new_visible:
        outbox.add(
            q.event_id, channels.studio(q.studio_id), "queue.upsert", host_question(q, translations, len(merged_ids))
        )
    elif old_visible:
        outbox.add(q.event_id, channels.studio(q.studio_id), "queue.remove", {"id": q.id})
    if merged_ids and _followers_see_a_change(old_status, q):
        followers_changed(db, outbox, merged_ids)
    was = in_feed(old_status, q.feed_hidden) if was_in_feed is None else was_in_feed
    # (approved and queued read the same on the feed: no event for that step)
    word_changed = old_status is not None and viewer_status(Status(old_status)) != viewer_status(Status(q.status))
    _feed_changed(outbox, q, translations, was=was, status_changed=word_changed, texts_changed=texts_changed)


def _feed_changed(
    outbox: Outbox,
    q: Question,
    translations: list[Translation],
    *,
    was: bool,
    status_changed: bool,
    texts_changed: bool | str,
) -> None:
    """The feed hears of a question when it enters or leaves it, or when what the feed
    shows of it changes (its status word, its texts). Entering, its texts in every
    language it already has go out, and its translation for the viewers is queued."""
    assert q.id is not None
    now = in_feed(q.status, q.feed_hidden)
    if not now:
        if was:
            outbox.add(q.event_id, channels.FEED, "feed.remove", {"id": q.id})
        return
    if not was or status_changed or texts_changed is True:  # (a re-translation may change its language)
        outbox.add(q.event_id, channels.FEED, "feed.upsert", feed_item(q))
    if not was or texts_changed:
        only = texts_changed if was and isinstance(texts_changed, str) else None
        feed_texts(outbox, q, [t for t in translations if only is None or t.language == only])
    if not was:
        outbox.feed_entered.append((q.event_id, q.id))


def feed_texts(outbox: Outbox, q: Question, rows: list[Translation]) -> None:
    """Texts of a question on the feed, each on its language's channel."""
    assert q.id is not None
    for t in rows:
        outbox.add(q.event_id, channels.feed_texts(t.language), "feed.text", feed_text(q.id, t))


def _followers_see_a_change(old_status: str | None, q: Question) -> bool:
    """Whether the askers of questions merged into ``q`` see something new: its
    viewer status word changed (approved and queued read the same), or it was merged
    or un-merged (they follow another question now)."""
    if old_status is None or old_status == q.status:
        return False
    if Status.merged.value in (old_status, q.status):
        return True
    return viewer_status(Status(old_status)) != viewer_status(Status(q.status)) or q.status == Status.rejected.value


def followers_changed(db: Session, outbox: Outbox, ids: Iterable[int]) -> None:
    """Tell each asker of the merged questions ``ids`` what their question shows now."""
    rows = list(db.exec(select(Question).where(col(Question.id).in_(list(ids))).order_by(col(Question.id))))
    for row, view in zip(rows, viewer_questions(db, rows), strict=True):
        outbox.add(row.event_id, channels.viewer(row.viewer_id), "question.updated", view)


def merges_changed(db: Session, outbox: Outbox, target_ids: Iterable[int | None]) -> None:
    """Questions were merged into (or taken back from) ``target_ids``: the kept
    questions' merged counts changed, for them and for any question they follow.
    Moderators get them anew, and their studio's host if it shows them. Their
    version does not change (nothing of theirs did): clients apply an equal one."""
    chain: list[Question] = []
    for target_id in dict.fromkeys(target_ids):
        chain += [k for k in kept_chain(db, target_id) if k not in chain]
    ids = [k.id for k in chain if k.id is not None]
    if not ids:
        return
    merged = descendants(db, ids)
    translations = translations_of(db, ids)
    for k in chain:
        assert k.id is not None
        outbox.add(
            k.event_id, channels.MODERATION, "question.updated", moderator_question(k, translations[k.id], merged[k.id])
        )
        if Status(k.status) in HOST_VISIBLE:
            view = host_question(k, translations[k.id], len(merged[k.id]))
            outbox.add(k.event_id, channels.studio(k.studio_id), "queue.upsert", view)


def queue_order(outbox: Outbox, event_id: int, studio_id: int, order: list[int], version: int) -> None:
    """The full order of a studio's queue; ``version`` (the studio's queue_version)
    lets a client drop an order older than the one it holds."""
    payload = {"studio_id": studio_id, "order": order, "version": version}
    outbox.add(event_id, channels.studio(studio_id), "queue.order", payload)
    outbox.add(event_id, channels.MODERATION, "queue.order", payload)
