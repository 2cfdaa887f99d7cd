"""Asking and moderating questions: one transaction per call."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..bus import channels
from ..db.models import (
    ON_AIR_INDEX,
    AddressBan,
    Ban,
    Event,
    ModerationAction,
    Question,
    Segment,
    Speaker,
    Studio,
    Translation,
    utcnow,
)
from ..domain import asker, lifecycle
from ..domain import queue as queue_rules
from ..domain.errors import Conflict, DomainError, NotFound
from ..domain.lifecycle import HIDDEN, Action, QuestionState, Status, bump, steps, transition
from ..domain.validation import (
    LANGUAGE_CODE,
    check_id,
    clean_client_id,
    clean_country,
    clean_language,
    clean_text,
    language_code,
)
from . import fanout
from .context import Context, Outbox
from .merges import descendants
from .views import iso, moderator_question, translations_of, viewer_question, viewer_questions


@dataclass(frozen=True)
class AskResult:
    question: dict[str, Any]  # the viewer's view
    created: bool


def find_existing(ctx: Context, viewer_id: str, client_id: object) -> dict[str, Any] | None:
    cid = clean_client_id(client_id)
    with ctx.read() as db:
        q = db.exec(select(Question).where(Question.viewer_id == viewer_id, Question.client_id == cid)).first()
        return viewer_questions(db, [q])[0] if q else None


def event_languages(db: Session, event_id: int, speaker: Speaker | None = None) -> set[str]:
    """The languages an event names (viewers', moderators', the speaker's): a question
    may declare one of them even if it is not an ISO 639-1 code."""
    event = db.get(Event, event_id)
    named = [*event.viewer_languages, event.moderator_language] if event else []
    named += speaker.languages if speaker else []
    return {code.split("-")[0].lower() for code in named if isinstance(code, str) and LANGUAGE_CODE.match(code)}


@dataclass(frozen=True)
class AskRequest:
    """One viewer's question as it arrived (not yet validated)."""

    viewer_id: str
    payload: dict[str, Any]
    address_hash: str | None = None  # keys.address_hash of the asker's address


@dataclass(frozen=True)
class _Fields:
    """An ask's fields, validated (everything that needs no database)."""

    client_id: str
    text: str
    language: str
    name: str | None
    speaker_id: int
    country: str | None
    asker_fields: object = None  # checked against the event's options when stored (domain/asker.py)
    contact: object = None


def ask(
    ctx: Context, event_id: int, viewer_id: str, payload: dict[str, Any], *, address_hash: str | None = None
) -> AskResult:
    """Validate and store a viewer's question. Idempotent on (viewer, client_id).
    ``address_hash`` (keys.address_hash of the client's address) is stored with it;
    a question from a banned viewer or a banned address is hidden."""
    (result,) = ask_many(ctx, event_id, [AskRequest(viewer_id, payload, address_hash)])
    if isinstance(result, DomainError):
        raise result
    return result


def ask_many(ctx: Context, event_id: int, requests: list[AskRequest]) -> list[AskResult | DomainError]:
    """Store several viewers' questions in one transaction: one commit (one fsync)
    for the whole group, one look-up of each kind for all of it, one multi-row
    INSERT, its events published in one round trip, its translations queued at
    once. Each question is judged on its own (a refused one gets its DomainError in
    the list and writes nothing); the results come in the order of ``requests``,
    and none is returned before the commit."""
    results: list[AskResult | DomainError | None] = [None] * len(requests)
    fields: dict[int, _Fields] = {}
    for i, request in enumerate(requests):
        try:
            fields[i] = _validate(ctx.settings, request.payload)
        except DomainError as exc:
            results[i] = exc
    created: list[int] = []
    try:
        if fields:
            with ctx.transaction() as (db, outbox):
                _store_group(ctx, db, outbox, event_id, requests, fields, results, created)
                if created:
                    outbox.after_commit.extend(
                        functools.partial(hook, list(created)) for hook in ctx.on_questions_created
                    )
    except sa.exc.IntegrityError:
        # A client id raced in through another hub between our look-up and our insert:
        # the group was rolled back; each question goes again on its own.
        if len(fields) == 1:  # alone: the one that raced in is its answer
            (i,) = fields
            again = find_existing(ctx, requests[i].viewer_id, requests[i].payload.get("client_id"))
            if again is None:
                raise
            results[i] = AskResult(again, created=False)
            return results  # type: ignore[return-value]
        return [_one(ctx, event_id, r) if i in fields else results[i] for i, r in enumerate(requests)]  # type: ignore[misc]
    ctx.run_hooks([functools.partial(hook, qid) for qid in created for hook in ctx.on_question_created])
    return results  # type: ignore[return-value]


def _one(ctx: Context, event_id: int, request: AskRequest) -> AskResult | DomainError:
    try:
        return ask(ctx, event_id, request.viewer_id, request.payload, address_hash=request.address_hash)
    except DomainError as exc:
        return exc


def _validate(s: Any, payload: dict[str, Any]) -> _Fields:
    text = clean_text(payload.get("text"), field="question", max_chars=s.max_question_chars, required=True)
    assert text is not None
    return _Fields(
        client_id=clean_client_id(payload.get("client_id")),
        text=text,
        language=language_code(payload.get("language")),
        name=clean_text(
            payload.get("display_name"),
            field="display_name",
            max_chars=s.max_name_chars,
            required=False,
            single_line=True,
        ),
        speaker_id=check_id(payload.get("speaker_id"), field="speaker_id", code="speaker.invalid"),
        country=clean_country(payload.get("country")),
        asker_fields=payload.get("fields"),
        contact=payload.get("contact"),
    )


def _store_group(
    ctx: Context,
    db: Session,
    outbox: Outbox,
    event_id: int,
    requests: list[AskRequest],
    fields: dict[int, _Fields],
    results: list[AskResult | DomainError | None],
    created: list[int],
) -> None:
    """Store a group of validated questions inside the caller's transaction. A
    question that is refused (DomainError in ``results``) writes nothing; one sent
    again (same viewer and client id, stored before or earlier in this group) gets
    the stored one back."""
    viewers = {requests[i].viewer_id for i in fields}
    pairs = {(requests[i].viewer_id, f.client_id) for i, f in fields.items()}
    stored = {  # sent before (a retry): the unique index (viewer_id, client_id) finds them
        (q.viewer_id, q.client_id): q
        for q in db.exec(select(Question).where(sa.tuple_(Question.viewer_id, Question.client_id).in_(pairs)))
    }
    banned_viewers = set(
        db.exec(select(Ban.viewer_id).where(Ban.event_id == event_id, col(Ban.viewer_id).in_(viewers)))
    )
    addresses = {requests[i].address_hash for i in fields} - {None}
    banned_addresses = (
        set(
            db.exec(
                select(AddressBan.address_hash).where(
                    AddressBan.event_id == event_id,
                    col(AddressBan.address_hash).in_(addresses),
                    AddressBan.expires_at > utcnow(),
                )
            )
        )
        if addresses
        else set()
    )
    allowed = {"live", "upcoming"} if ctx.settings.accept_upcoming_questions else {"live"}
    speakers: dict[int, tuple[Speaker, Segment, set[str]] | None] = {}
    event = db.get(Event, event_id)
    options = event.options if event is not None else {}
    new: list[tuple[int, Question]] = []
    again: list[tuple[int, Question]] = []  # sent twice within this group: the first one answers
    before: list[tuple[int, Question]] = []  # stored by an earlier request
    for i, f in fields.items():
        request = requests[i]
        known = stored.get((request.viewer_id, f.client_id))
        if known is not None:
            (before if known.id is not None else again).append((i, known))
            continue
        try:
            q = _new_question(db, event_id, request, f, allowed, speakers, options)
        except DomainError as exc:  # nothing of this question was written
            results[i] = exc
            continue
        if request.viewer_id in banned_viewers or request.address_hash in banned_addresses:
            # hidden: stored (and audited), never shown to moderators or hosts
            q.status, q.reject_reason, q.translation_state = Status.rejected.value, HIDDEN, "done"
        stored[(request.viewer_id, f.client_id)] = q
        new.append((i, q))
    db.add_all([q for _i, q in new])
    db.flush()  # one multi-row INSERT (RETURNING the ids)
    for i, q in new:
        assert q.id is not None
        view = viewer_question(q)
        results[i] = AskResult(view, created=True)
        if q.reject_reason == HIDDEN:
            outbox.add(event_id, channels.viewer(q.viewer_id), "question.created", view)
            continue
        created.append(q.id)
        fanout.question_changed(db, outbox, q, old_status=None, created=True)
    for i, q in again:
        results[i] = AskResult(viewer_question(q), created=False)
    for (i, _q), view in zip(before, viewer_questions(db, [q for _i, q in before]), strict=True):
        results[i] = AskResult(view, created=False)


def _new_question(
    db: Session,
    event_id: int,
    request: AskRequest,
    f: _Fields,
    allowed: set[str],
    speakers: dict[int, tuple[Speaker, Segment, set[str]] | None],
    options: dict[str, Any],
) -> Question:
    """A question for a live speaker of this event, not yet added to the session.
    ``speakers`` caches each speaker's segment and languages for the group;
    ``options`` are the event's (its asker fields and contact offer)."""
    fields = asker.clean_fields(options, f.asker_fields)
    email = asker.clean_contact(options, f.contact)
    if f.speaker_id not in speakers:
        speaker = db.get(Speaker, f.speaker_id)
        segment = db.get(Segment, speaker.segment_id) if speaker else None
        ok = speaker is not None and segment is not None and segment.event_id == event_id
        speakers[f.speaker_id] = (speaker, segment, event_languages(db, event_id, speaker)) if ok else None  # type: ignore[assignment]
    found = speakers[f.speaker_id]
    if found is None:
        raise NotFound("speaker.unknown", f"there is no speaker {f.speaker_id} in this event")
    speaker, segment, languages = found
    if segment.status not in allowed:
        raise DomainError(
            "speaker.not_live",
            f"{speaker.name} is not on air now ({segment.status}); questions are closed",
            segment_status=segment.status,
        )
    assert segment.id is not None
    return Question(
        event_id=event_id,
        speaker_id=f.speaker_id,
        segment_id=segment.id,
        studio_id=segment.studio_id,
        viewer_id=request.viewer_id,
        client_id=f.client_id,
        text=f.text,
        language=clean_language(f.language, also=languages),
        display_name=f.name,
        country=f.country,
        address_hash=request.address_hash,
        asker_fields=fields,
        contact_email=email,
        contact_consent_at=utcnow() if email else None,
    )


def _load(db: Session, event_id: int, question_id: int, *, lock: bool = True) -> Question:
    stmt = select(Question).where(Question.id == question_id, Question.event_id == event_id)
    if lock:
        stmt = stmt.with_for_update()
    q = db.exec(stmt).first()
    if q is None:
        raise NotFound("question.unknown", f"there is no question {question_id}")
    return q


def _moderator_view(db: Session, q: Question) -> dict[str, Any]:
    assert q.id is not None
    return moderator_question(q, translations_of(db, [q.id])[q.id], descendants(db, [q.id])[q.id])


def _state(q: Question) -> QuestionState:
    return QuestionState(Status(q.status), q.version, q.reject_reason, q.merged_into_id)


def _snapshot(q: Question) -> dict[str, object]:
    return {
        "status": q.status,
        "version": q.version,
        "queue_position": q.queue_position,
        "reject_reason": q.reject_reason,
        "merged_into": q.merged_into_id,
        "starred": q.starred,
    }


def _audit(db: Session, q: Question, actor: str, action: str, before: dict[str, object], **extra: object) -> None:
    """Record who did what; ``batch`` ties together the steps of one request (for undo)."""
    after = _snapshot(q) | extra
    db.add(
        ModerationAction(event_id=q.event_id, question_id=q.id, actor=actor, action=action, before=before, after=after)
    )


@contextmanager
def _studio_transaction(ctx: Context) -> Iterator[tuple[Session, Outbox]]:
    """A transaction that changes a studio's queue or on-air question. Run
    ``lock_studio`` first in it; should a second question still reach the air
    (a writer that skipped the lock), the database refuses it: a Conflict, not a 500."""
    try:
        with ctx.transaction() as (db, outbox):
            yield db, outbox
    except sa.exc.IntegrityError as exc:
        # PostgreSQL names the index; SQLite names its column (no other unique index has it).
        if ON_AIR_INDEX not in str(exc.orig) and "question.studio_id" not in str(exc.orig):
            raise
        raise Conflict("studio.on_air_taken", "another question went on air in this studio meanwhile; reload") from None


def lock_studio(db: Session, event_id: int, studio_id: int) -> Studio:
    """Lock a studio of this event until commit: its queue and on-air changes run one
    at a time (PostgreSQL: SELECT ... FOR NO KEY UPDATE, which questions being asked
    into the studio do not wait for; SQLite: BEGIN IMMEDIATE already has the write
    lock). Take it before any question lock, always in this order."""
    studio = db.exec(
        select(Studio)
        .where(Studio.id == studio_id, Studio.event_id == event_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).first()
    if studio is None:
        raise NotFound("studio.unknown", f"there is no studio {studio_id}")
    return studio


def _studio_of(db: Session, event_id: int, question_id: int) -> int:
    """The studio of a question (it never changes, so no lock is needed to read it)."""
    studio_id = db.exec(
        select(Question.studio_id).where(Question.id == question_id, Question.event_id == event_id)
    ).first()
    if studio_id is None:
        raise NotFound("question.unknown", f"there is no question {question_id}")
    return studio_id


def queued_in(db: Session, studio_id: int) -> list[Question]:
    """A studio's queued questions in on-air order."""
    return list(
        db.exec(
            select(Question)
            .where(Question.studio_id == studio_id, Question.status == Status.queued.value)
            .order_by(Question.queue_position, Question.id)  # type: ignore[arg-type]
        )
    )


def _on_air_in(db: Session, studio_id: int) -> list[Question]:
    return list(
        db.exec(
            select(Question)
            .where(Question.studio_id == studio_id, Question.status == Status.on_air.value)
            .with_for_update()
        )
    )


def _in_queue(status: str | None) -> bool:
    """Part of a studio's running order: queued, or on air."""
    return status in (Status.queued.value, Status.on_air.value)


def _to_tail(db: Session, q: Question) -> None:
    """Place a question that just became queued at the end of its studio's queue."""
    tail = db.exec(
        select(sa.func.max(Question.queue_position)).where(
            Question.studio_id == q.studio_id, Question.status == Status.queued.value
        )
    ).one()
    q.queue_position = (tail or 0) + 1


def _place(db: Session, q: Question, old: str) -> None:
    """Keep ``queue_position`` in step with a status change: a question that just became
    queued goes to the tail; one that is neither queued nor on air has none."""
    if q.status == Status.queued.value and old != Status.queued.value:
        _to_tail(db, q)
    elif not _in_queue(q.status):
        q.queue_position = None


def _announce_order(db: Session, outbox: Outbox, studio: Studio) -> None:
    """Bump the locked studio's queue version and announce its order with it."""
    assert studio.id is not None
    studio.queue_version += 1
    db.add(studio)
    order = [x.id for x in queued_in(db, studio.id) if x.id]
    fanout.queue_order(outbox, studio.event_id, studio.id, order, studio.queue_version)


def _apply(
    db: Session,
    outbox: Outbox,
    q: Question,
    action: Action,
    actor: str,
    *,
    expected_version: int | None,
    reason: str | None = None,
    merged_into: int | None = None,
    batch: str | None = None,
) -> None:
    before = _snapshot(q)
    old = q.status
    new = transition(_state(q), action, expected_version=expected_version, reason=reason, merged_into=merged_into)
    q.status, q.version = new.status.value, new.version
    q.reject_reason, q.merged_into_id = new.reject_reason, new.merged_into
    _place(db, q, old)
    q.updated_at = utcnow()
    db.add(q)
    db.flush()
    _audit(db, q, actor, action.value, before, batch=batch)
    fanout.question_changed(db, outbox, q, old_status=old)
    if action is Action.merge:
        fanout.merges_changed(db, outbox, [q.merged_into_id])


def moderate(
    ctx: Context,
    event_id: int,
    question_id: int,
    action: str,
    actor: str,
    *,
    expected_version: int | None,
    reason: str | None = None,
    merged_into: int | None = None,
    enqueue: bool = True,
    from_approved: bool = False,
) -> dict[str, Any]:
    """Apply one life-cycle request under the studio's lock, as one undo batch.
    ``approve`` also queues unless ``enqueue`` is false. ``on_air`` marks the
    studio's current on-air question answered; with ``from_approved`` (moderators)
    it also takes an approved question, queueing it first (lifecycle.steps). A
    change to the studio's queue or on-air question bumps its queue version."""
    try:
        act = Action(action)
    except ValueError:
        raise DomainError("action.unknown", f"unknown action {action!r}") from None
    batch = uuid.uuid4().hex
    with _studio_transaction(ctx) as (db, outbox):
        studio = lock_studio(db, event_id, _studio_of(db, event_id, question_id))
        q = _load(db, event_id, question_id)
        old = q.status
        if act is Action.merge:
            _check_merge_target(db, event_id, q, merged_into)
        todo = steps(act, Status(old), enqueue=enqueue, from_approved=from_approved)
        if act is Action.on_air:  # an illegal request rolls it all back
            for other in _on_air_in(db, q.studio_id):
                _apply(db, outbox, other, Action.answer, actor, expected_version=None)
        for n, step in enumerate(todo):
            _apply(
                db,
                outbox,
                q,
                step,
                actor,
                expected_version=expected_version if n == 0 else None,
                reason=reason,
                merged_into=merged_into,
                batch=batch,
            )
        if _in_queue(old) or _in_queue(q.status):
            _announce_order(db, outbox, studio)
        return _moderator_view(db, q)


def _check_merge_target(db: Session, event_id: int, q: Question, target_id: int | None) -> None:
    if target_id is None:
        raise DomainError("question.merge_target_required", "name the question to merge into")
    if target_id == q.id:
        raise DomainError("question.merge_self", "a question cannot be merged into itself")
    target = db.get(Question, target_id)
    if target is None or target.event_id != event_id:
        raise NotFound("question.unknown", f"there is no question {target_id}")
    if target.studio_id != q.studio_id:
        # A merged asker follows the kept question: both must answer to the studio lock
        # this transaction holds, or a race with the kept one's answer (or a merge back
        # the other way) would go unseen. A slip of a drag must not cross studios either.
        raise Conflict(
            "question.merge_other_studio",
            f"question {target_id} is for another studio; merge only questions of one studio",
            studio=target.studio_id,
        )
    if target.status in (Status.merged.value, Status.rejected.value):
        raise Conflict("question.merge_target_closed", f"question {target_id} is {target.status}")


def edit_translation(
    ctx: Context,
    event_id: int,
    question_id: int,
    language: str,
    text: object,
    actor: str,
    *,
    expected_version: int | None,
) -> dict[str, Any]:
    """A moderator's fix of a translation. Later machine results never overwrite it."""
    lang = language_code(language)
    fixed = clean_text(text, field="translation", max_chars=ctx.settings.max_question_chars * 3, required=True)
    with ctx.transaction() as (db, outbox):
        q = _load(db, event_id, question_id)
        lang = clean_language(lang, also=event_languages(db, event_id))
        before = _snapshot(q)
        new = bump(_state(q), expected_version=expected_version)
        t = db.exec(select(Translation).where(Translation.question_id == q.id, Translation.language == lang)).first()
        old_text = t.text if t else None
        if t is None:
            t = Translation(question_id=question_id, language=lang, text=fixed or "", engine="human")
        t.text, t.engine, t.model_version, t.edited_by, t.updated_at = fixed or "", "human", "", actor, utcnow()
        db.add(t)
        q.version, q.updated_at = new.version, utcnow()
        db.add(q)
        db.flush()
        _audit(
            db, q, actor, "edit_translation", before | {"language": lang, "text": old_text}, language=lang, text=fixed
        )
        fanout.question_changed(db, outbox, q, old_status=q.status, texts_changed=lang)
        return _moderator_view(db, q)


def set_starred(
    ctx: Context, event_id: int, question_id: int, starred: bool, actor: str, *, expected_version: int | None
) -> dict[str, Any]:
    with ctx.transaction() as (db, outbox):
        q = _load(db, event_id, question_id)
        before = _snapshot(q)
        q.version = bump(_state(q), expected_version=expected_version).version
        q.starred, q.updated_at = bool(starred), utcnow()
        db.add(q)
        db.flush()
        _audit(db, q, actor, "star" if starred else "unstar", before)
        fanout.question_changed(db, outbox, q, old_status=q.status)
        return _moderator_view(db, q)


def set_feed_hidden(
    ctx: Context, event_id: int, question_id: int, hidden: bool, actor: str, *, expected_version: int | None
) -> dict[str, Any]:
    """A moderator hides a question from the public feed (or shows it again) without
    rejecting it: its asker, the host and the queue are not affected."""
    with ctx.transaction() as (db, outbox):
        q = _load(db, event_id, question_id)
        before = _snapshot(q) | {"feed_hidden": q.feed_hidden}
        was = fanout.in_feed(q.status, q.feed_hidden)
        q.version = bump(_state(q), expected_version=expected_version).version
        q.feed_hidden, q.updated_at = bool(hidden), utcnow()
        db.add(q)
        db.flush()
        _audit(db, q, actor, "feed_hide" if hidden else "feed_show", before, feed_hidden=q.feed_hidden)
        fanout.question_changed(db, outbox, q, old_status=q.status, was_in_feed=was)
        return _moderator_view(db, q)


def reorder(
    ctx: Context, event_id: int, studio_id: int, order: list[int], actor: str, *, expected_version: int | None = None
) -> list[int]:
    """Replace a studio's queue order. It must name exactly the queued questions;
    ``expected_version``, if given, must be the studio's queue version."""
    if not isinstance(order, list):
        raise DomainError("queue.invalid", "order must be a list of question ids")
    for qid in order:
        check_id(qid, field="each id of order", code="queue.invalid")
    with _studio_transaction(ctx) as (db, outbox):
        studio, queued = _locked_queue(db, event_id, studio_id, expected_version)
        queue_rules.check_same_members([q.id for q in queued if q.id], order)
        return _write_order(db, outbox, studio, queued, order, actor)


def move(
    ctx: Context,
    event_id: int,
    studio_id: int,
    question_id: int,
    index: int,
    actor: str,
    *,
    expected_version: int | None = None,
) -> list[int]:
    """Move one queued question to ``index`` (0 = next on air)."""
    with _studio_transaction(ctx) as (db, outbox):
        studio, queued = _locked_queue(db, event_id, studio_id, expected_version)
        order = queue_rules.move([q.id for q in queued if q.id], question_id, index)
        return _write_order(db, outbox, studio, queued, order, actor)


def _locked_queue(
    db: Session, event_id: int, studio_id: int, expected_version: int | None
) -> tuple[Studio, list[Question]]:
    """Lock a studio of this event, check its queue version, read its queue."""
    studio = lock_studio(db, event_id, studio_id)
    queue_rules.check_version(studio.queue_version, expected_version)
    return studio, queued_in(db, studio_id)


def _write_order(
    db: Session, outbox: Outbox, studio: Studio, queued: list[Question], order: list[int], actor: str
) -> list[int]:
    by_id = {q.id: q for q in queued}
    before = [q.id for q in queued]
    for pos, qid in enumerate(order, start=1):
        by_id[qid].queue_position = float(pos)
        db.add(by_id[qid])
    db.add(
        ModerationAction(
            event_id=studio.event_id,
            actor=actor,
            action="reorder",
            before={"studio_id": studio.id, "order": before},
            after={"studio_id": studio.id, "order": order},
        )
    )
    db.flush()
    _announce_order(db, outbox, studio)
    return order


def event_by_slug(db: Session, slug: str | None) -> Event | None:
    stmt = select(Event).order_by(Event.id)  # type: ignore[arg-type]
    if slug:
        stmt = stmt.where(Event.slug == slug)
    return db.exec(stmt).first()


def undo(ctx: Context, event_id: int, question_id: int, actor: str, *, expected_version: int | None) -> dict[str, Any]:
    """Revert the last life-cycle request made on this question (all its steps), if
    nothing changed the question since, along the life cycle's arrows only. Restoring
    ``on_air`` while another question of the studio is on air is refused (409
    ``studio.on_air_taken``): never two on air, and the host's current one is not cut."""
    with _studio_transaction(ctx) as (db, outbox):
        studio = lock_studio(db, event_id, _studio_of(db, event_id, question_id))
        q = _load(db, event_id, question_id)
        actions = db.exec(
            select(ModerationAction)
            .where(ModerationAction.question_id == question_id, ModerationAction.action.in_(_UNDOABLE))  # type: ignore[attr-defined]
            .order_by(ModerationAction.id.desc())  # type: ignore[union-attr]
            .limit(5)
        ).all()
        if not actions or not actions[0].after or not actions[0].before:
            raise DomainError("undo.nothing", "there is nothing to undo on this question")
        last = actions[0]
        assert last.after is not None
        if last.after.get("version") != q.version:
            raise Conflict(
                "undo.stale", "the question changed since that action; undo it by hand", current_version=q.version
            )
        batch = last.after.get("batch")
        group = [a for a in actions if batch and a.after and a.after.get("batch") == batch] or [last]
        target = group[-1].before or {}
        earlier = QuestionState(
            Status(str(target["status"])),
            q.version,
            target.get("reject_reason"),  # type: ignore[arg-type]
            target.get("merged_into"),  # type: ignore[arg-type]
        )
        elsewhere = [x.id for x in _on_air_in(db, q.studio_id) if x.id != q.id]
        new = lifecycle.undo(
            _state(q), earlier, expected_version=expected_version, on_air_elsewhere=elsewhere[0] if elsewhere else None
        )
        if new.status is Status.merged:  # merged again (an undo undone): into an open question only
            _check_merge_target(db, event_id, q, new.merged_into)
        before, old, old_target = _snapshot(q), q.status, q.merged_into_id
        q.status, q.version, q.reject_reason, q.merged_into_id = (
            new.status.value,
            new.version,
            new.reject_reason,
            new.merged_into,
        )
        _place(db, q, old)
        q.updated_at = utcnow()
        db.add(q)
        db.flush()
        _audit(db, q, actor, "undo", before, undid=last.action)
        fanout.question_changed(db, outbox, q, old_status=old)
        if Status.merged.value in (old, q.status):
            fanout.merges_changed(db, outbox, [old_target if old == Status.merged.value else None, q.merged_into_id])
        if _in_queue(old) or _in_queue(q.status):
            _announce_order(db, outbox, studio)
        return _moderator_view(db, q)


_UNDOABLE = [a.value for a in Action] + ["undo"]


def ban_asker(
    ctx: Context, event_id: int, question_id: int, actor: str, *, address_minutes: int | None = None
) -> dict[str, Any]:
    """Hide the asker's future questions (this one stays as it is): their viewer for
    the event, and their address (its keyed hash, if the question has one) for
    ``address_minutes`` (default ``QA_ADDRESS_BAN_MINUTES``; 0: no address ban), so a
    viewer who drops its token is still caught meanwhile. Banning again extends."""
    minutes = ctx.settings.address_ban_minutes if address_minutes is None else address_minutes
    try:
        return _ban(ctx, event_id, question_id, actor, minutes)
    except sa.exc.IntegrityError:  # another moderator banned the same asker at the same moment
        return _ban(ctx, event_id, question_id, actor, minutes)


def _ban(ctx: Context, event_id: int, question_id: int, actor: str, minutes: int) -> dict[str, Any]:
    with ctx.transaction() as (db, _):
        q = _load(db, event_id, question_id, lock=False)
        after: dict[str, object] = {}
        if db.exec(select(Ban).where(Ban.event_id == event_id, Ban.viewer_id == q.viewer_id)).first() is None:
            db.add(Ban(event_id=event_id, viewer_id=q.viewer_id, actor=actor))
            after["viewer"] = q.viewer_id[:8]
        until = None
        if q.address_hash is not None and minutes > 0:
            until = utcnow() + timedelta(minutes=minutes)
            ban = db.exec(
                select(AddressBan).where(AddressBan.event_id == event_id, AddressBan.address_hash == q.address_hash)
            ).first()
            if ban is None:
                db.add(AddressBan(event_id=event_id, address_hash=q.address_hash, actor=actor, expires_at=until))
                after["address_until"] = iso(until)
            elif ban.expires_at < until:
                ban.expires_at, ban.actor = until, actor
                db.add(ban)
                after["address_until"] = iso(until)
            else:
                until = ban.expires_at
        if after:
            db.add(
                ModerationAction(
                    event_id=event_id, question_id=q.id, actor=actor, action="ban", before=None, after=after
                )
            )
        return {"banned": q.viewer_id[:8], "address_banned_until": iso(until) if until else None}


def unban_asker(ctx: Context, event_id: int, question_id: int, actor: str) -> dict[str, Any]:
    """Take back a ban made from this question: the event's ban of its asker's
    viewer, and the ban of its address (its keyed hash, if it has one). Questions
    hidden meanwhile stay hidden; the asker's next ones reach the moderators."""
    with ctx.transaction() as (db, _):
        q = _load(db, event_id, question_id, lock=False)
        viewer = _delete(db, Ban, sa.and_(col(Ban.event_id) == event_id, col(Ban.viewer_id) == q.viewer_id))
        address = 0
        if q.address_hash is not None:
            where = sa.and_(col(AddressBan.event_id) == event_id, col(AddressBan.address_hash) == q.address_hash)
            address = _delete(db, AddressBan, where)
        if viewer or address:
            after = {"viewer": q.viewer_id[:8], "address": bool(address)}
            db.add(
                ModerationAction(
                    event_id=event_id, question_id=q.id, actor=actor, action="unban", before=None, after=after
                )
            )
        return {"banned": False}


def _delete(db: Session, table: type, where: sa.ColumnElement[bool]) -> int:
    result = db.exec(sa.delete(table).where(where))  # type: ignore[call-overload]
    return int(result.rowcount or 0)


def retranslate(
    ctx: Context, event_id: int, question_id: int, actor: str, *, expected_version: int | None, language: object = None
) -> dict[str, Any]:
    """Translate again by machine, optionally from a corrected source language
    (say, the one the detector suggested). Drops the machine translations; hand
    edits stay unless the source language changes."""
    with ctx.transaction() as (db, outbox):
        q = _load(db, event_id, question_id)
        before = _snapshot(q)
        q.version = bump(_state(q), expected_version=expected_version).version
        new_language = q.language
        if language is not None:
            new_language = clean_language(language_code(language), also=event_languages(db, event_id))
        for t in db.exec(select(Translation).where(Translation.question_id == q.id)):
            if t.engine != "human" or new_language != q.language:
                db.delete(t)
        old_language, q.language = q.language, new_language
        q.translation_state, q.translation_error, q.detected_language, q.updated_at = "pending", None, None, utcnow()
        db.add(q)
        db.flush()
        _audit(db, q, actor, "retranslate", before | {"language": old_language}, language=new_language)
        fanout.question_changed(db, outbox, q, old_status=q.status, texts_changed=True)
        if fanout.in_feed(q.status, q.feed_hidden):  # its texts for the feed's viewers are made again too
            outbox.feed_entered.append((q.event_id, question_id))
        outbox.after_commit.extend(functools.partial(hook, question_id) for hook in ctx.on_question_created)
        outbox.after_commit.extend(functools.partial(hook, [question_id]) for hook in ctx.on_questions_created)
        return _moderator_view(db, q)
