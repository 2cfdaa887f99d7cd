"""Group commit of asks (questions.ask_many): one transaction for many viewers'
questions, each judged on its own, and the race with another hub redone one by one."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from qa_service.bus import channels
from qa_service.db.engine import make_engine
from qa_service.db.models import Question, Segment, Speaker
from qa_service.domain.errors import DomainError
from qa_service.services import questions
from qa_service.services.context import Context
from qa_service.services.questions import AskRequest, AskResult

from .support import stream

pytestmark = pytest.mark.integration


def _payload(client_id: str, speaker_id: int, text: str) -> dict[str, Any]:
    return {"client_id": client_id, "speaker_id": speaker_id, "text": text, "language": "en"}


def _rows(ctx: Context, event_id: int) -> list[Question]:
    with ctx.read() as db:
        return list(db.exec(select(Question).where(Question.event_id == event_id).order_by(Question.id)))  # type: ignore[arg-type]


def _not_live_speaker(ctx: Context, event_id: int) -> int:
    with ctx.read() as db:
        rows = db.exec(
            select(Speaker.id)
            .join(Segment, Segment.id == Speaker.segment_id)  # type: ignore[arg-type]
            .where(Segment.event_id == event_id, Segment.status == "upcoming")
        ).all()
    assert rows, "the sample has no upcoming segment"
    speaker_id = rows[0]
    assert speaker_id is not None
    return speaker_id


class Hooks:
    """Records what the after-commit hooks were called with."""

    def __init__(self, ctx: Context) -> None:
        self.each: list[int] = []
        self.groups: list[list[int]] = []
        ctx.on_question_created.append(self.each.append)
        ctx.on_questions_created.append(self.groups.append)


def test_a_mixed_group_is_judged_item_by_item_stored_once_and_announced(ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    upcoming = _not_live_speaker(ctx, event_id)
    # A banned viewer: one earlier question of theirs, then the ban.
    before = questions.ask(ctx, event_id, "viewer-banned", _payload("cid-banned-0-0", speaker, "Before the ban?"))
    questions.ban_asker(ctx, event_id, before.question["id"], "mod1", address_minutes=0)
    hooks = Hooks(ctx)  # from here on: only the group's hooks

    group = [
        AskRequest("viewer-a", _payload("cid-a-1-0", speaker, "First from A?")),
        AskRequest("viewer-b", _payload("cid-b-1-0", speaker, "   ")),  # empty once trimmed
        AskRequest("viewer-c", _payload("cid-c-1-0", 999_999, "To nobody?")),  # unknown speaker
        AskRequest("viewer-a", _payload("cid-a-2-0", speaker, "Second from A?")),
        AskRequest("viewer-a", _payload("cid-a-1-0", speaker, "First from A, sent again?")),  # same (viewer, client_id)
        AskRequest("viewer-banned", _payload("cid-banned-1-0", speaker, "Spam?")),
        AskRequest("viewer-e", _payload("cid-e-1-0", upcoming, "Too early?")),  # speaker not on air
        AskRequest("viewer-d", _payload("cid-d-1-0", speaker, "From D?")),
    ]
    results = questions.ask_many(ctx, event_id, group)

    assert len(results) == len(group)
    a1, empty, unknown, a2, again, banned, early, d1 = results
    assert isinstance(empty, DomainError) and empty.code == "question.empty"
    assert isinstance(unknown, DomainError) and unknown.code == "speaker.unknown"
    assert isinstance(early, DomainError) and early.code == "speaker.not_live"
    assert isinstance(a1, AskResult) and isinstance(a2, AskResult) and isinstance(again, AskResult)
    assert isinstance(banned, AskResult) and isinstance(d1, AskResult)
    assert a1.created and a2.created and d1.created and banned.created
    assert a1.question["client_id"] == "cid-a-1-0" and a1.question["text"] == "First from A?"
    # The repeat within the group is the first one, not a second row.
    assert not again.created
    assert again.question["id"] == a1.question["id"] and again.question["text"] == "First from A?"
    # The banned asker is not told: their question reads as received, no reason.
    assert banned.question["status"] == "received" and banned.question["reason"] is None
    created_ids = [a1.question["id"], a2.question["id"], d1.question["id"]]
    assert created_ids == sorted(created_ids)  # stored in the order they came

    rows = _rows(ctx, event_id)
    assert sorted((q.viewer_id, q.client_id) for q in rows) == sorted(
        [
            ("viewer-banned", "cid-banned-0-0"),
            ("viewer-a", "cid-a-1-0"),
            ("viewer-a", "cid-a-2-0"),
            ("viewer-banned", "cid-banned-1-0"),
            ("viewer-d", "cid-d-1-0"),
        ]
    )
    by_id = {q.id: q for q in rows}
    assert by_id[a1.question["id"]].text == "First from A?"
    assert by_id[banned.question["id"]].reject_reason == questions.HIDDEN

    # Events went out after the commit: moderators see the three, never the hidden one.
    moderation = [p["id"] for p in stream(ctx, event_id, channels.MODERATION, "question.created")]
    assert moderation == [before.question["id"], *created_ids]
    assert [p["id"] for p in stream(ctx, event_id, channels.viewer("viewer-a"), "question.created")] == created_ids[:2]
    assert [p["id"] for p in stream(ctx, event_id, channels.viewer("viewer-d"), "question.created")] == [
        d1.question["id"]
    ]
    banned_events = stream(ctx, event_id, channels.viewer("viewer-banned"), "question.created")
    assert [p["id"] for p in banned_events] == [before.question["id"], banned.question["id"]]
    assert banned_events[-1]["status"] == "received" and banned_events[-1]["reason"] is None
    for refused in ("viewer-b", "viewer-c", "viewer-e"):
        assert stream(ctx, event_id, channels.viewer(refused), "question.created") == []

    # One call of the group hook with every created question; the per-question hook for each.
    assert hooks.groups == [created_ids]
    assert hooks.each == created_ids


def test_a_group_of_refusals_writes_and_calls_nothing(ctx, event_id, sample) -> None:
    hooks = Hooks(ctx)
    results = questions.ask_many(
        ctx,
        event_id,
        [
            AskRequest("viewer-x", _payload("cid-x-1-0", sample["speakers"]["moscow"][0].id, "")),
            AskRequest("viewer-y", _payload("cid-y-1-0", 999_999, "Anyone?")),
        ],
    )
    assert [r.code for r in results if isinstance(r, DomainError)] == ["question.empty", "speaker.unknown"]
    assert _rows(ctx, event_id) == []
    assert hooks.groups == [] and hooks.each == []
    assert stream(ctx, event_id, channels.MODERATION, "question.created") == []


def _client_ids(parameters: Any) -> list[str]:
    """The client ids an INSERT carries: one row, or many (executemany, or SQLAlchemy's
    "insertmanyvalues" batch whose keys are ``client_id__0``, ``client_id__1``, ...)."""
    rows = parameters if isinstance(parameters, list | tuple) else [parameters]
    found: list[str] = []
    for row in rows:
        if isinstance(row, dict):
            keys = sorted((k for k in row if re.fullmatch(r"client_id(__\d+)?", k)), key=lambda k: int(k[11:] or 0))
            found += [str(row[k]) for k in keys]
    return found


class RaceIn:
    """A one-shot ``before_cursor_execute`` listener on ``ctx.engine``: when our INSERT
    of ``client_id`` is about to run, another hub (its own engine and connection)
    stores the same (viewer, client_id) and commits first."""

    def __init__(self, ctx: Context, event_id: int, viewer_id: str, payload: dict[str, Any]) -> None:
        self.ctx = ctx
        self.other = Context(ctx.settings, make_engine(ctx.settings.effective_database_url), ctx.publisher)
        self.event_id = event_id
        self.viewer_id = viewer_id
        self.payload = payload
        self.raced: AskResult | None = None
        self.inserts: list[list[str]] = []  # the client ids of each of our INSERT INTO question, in order
        self.raced_at: int | None = None  # index in ``inserts`` of the one the other hub beat
        sa.event.listen(ctx.engine, "before_cursor_execute", self)

    def __call__(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if not statement.lstrip().upper().startswith("INSERT INTO QUESTION "):
            return
        self.inserts.append(_client_ids(parameters))
        if self.raced is None and self.payload["client_id"] in self.inserts[-1]:
            self.raced_at = len(self.inserts) - 1
            self.raced = questions.ask(self.other, self.event_id, self.viewer_id, self.payload)

    def close(self) -> None:
        sa.event.remove(self.ctx.engine, "before_cursor_execute", self)
        self.other.engine.dispose()


POSTGRES_ONLY = pytest.mark.parametrize(
    "db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@POSTGRES_ONLY
def test_a_client_id_raced_in_by_another_hub_redoes_the_group_one_by_one(ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    race = RaceIn(ctx, event_id, "viewer-r", _payload("cid-r-1-0", speaker, "Raced in through another hub?"))
    hooks = Hooks(ctx)
    try:
        results = questions.ask_many(
            ctx,
            event_id,
            [
                AskRequest("viewer-p", _payload("cid-p-1-0", speaker, "Before the race?")),
                AskRequest("viewer-r", _payload("cid-r-1-0", speaker, "Mine, a moment too late?")),
                AskRequest("viewer-q", _payload("cid-q-1-0", speaker, "After the race?")),
                AskRequest("viewer-q", _payload("cid-q-2-0", speaker, "")),
            ],
        )
    finally:
        race.close()

    assert race.raced is not None and race.raced.created, race.inserts
    p1, r1, q1, q2 = results
    assert isinstance(p1, AskResult) and isinstance(r1, AskResult) and isinstance(q1, AskResult)
    assert isinstance(q2, DomainError) and q2.code == "question.empty"
    # The raced one answers with the other hub's row, as a duplicate.
    assert not r1.created and r1.question["id"] == race.raced.question["id"]
    assert r1.question["text"] == "Raced in through another hub?"
    assert p1.created and q1.created
    # The group was rolled back, then redone one question at a time: after the INSERT
    # the other hub beat, one single-row INSERT for each new question (none for the raced one).
    assert race.raced_at is not None
    assert race.inserts[race.raced_at + 1 :] == [["cid-p-1-0"], ["cid-q-1-0"]], race.inserts

    rows = _rows(ctx, event_id)
    assert sorted((q.viewer_id, q.client_id) for q in rows) == [
        ("viewer-p", "cid-p-1-0"),
        ("viewer-q", "cid-q-1-0"),
        ("viewer-r", "cid-r-1-0"),
    ]
    stored = {q.id for q in rows if q.id is not None}
    assert {p1.question["id"], q1.question["id"], r1.question["id"]} == stored
    # Only committed questions were announced (nothing of the rolled-back attempt), each once.
    announced = [p["id"] for p in stream(ctx, event_id, channels.MODERATION, "question.created")]
    assert sorted(announced) == sorted(stored)
    # Our hooks ran for our two stored questions, once each (never for the other hub's).
    mine = [p1.question["id"], q1.question["id"]]
    assert hooks.each == mine
    assert sorted(i for g in hooks.groups for i in g) == mine


@POSTGRES_ONLY
def test_a_lone_ask_raced_in_by_another_hub_answers_duplicate(ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    race = RaceIn(ctx, event_id, "viewer-s", _payload("cid-s-1-0", speaker, "The other hub's?"))
    hooks = Hooks(ctx)
    try:
        result = questions.ask(ctx, event_id, "viewer-s", _payload("cid-s-1-0", speaker, "Mine?"))
    finally:
        race.close()
    assert race.raced is not None
    assert not result.created and result.question["id"] == race.raced.question["id"]
    assert [(q.viewer_id, q.client_id, q.text) for q in _rows(ctx, event_id)] == [
        ("viewer-s", "cid-s-1-0", "The other hub's?")
    ]
    assert hooks.each == [] and hooks.groups == []


@POSTGRES_ONLY
def test_a_raced_ask_beside_refused_ones_answers_each_asker_its_own(ctx, event_id, sample) -> None:
    """One question of a group passes validation and loses the race: every other
    asker of the group still gets its own answer, in order (never the raced row)."""
    speaker = sample["speakers"]["moscow"][0].id
    race = RaceIn(ctx, event_id, "viewer-t", _payload("cid-t-1-0", speaker, "The other hub's, again?"))
    try:
        results = questions.ask_many(
            ctx,
            event_id,
            [
                AskRequest("viewer-u", _payload("cid-u-1-0", speaker, "")),
                AskRequest("viewer-t", _payload("cid-t-1-0", speaker, "Mine, late?")),
                AskRequest("viewer-v", _payload("cid-v-1-0", speaker, "x" * 10_000)),
            ],
        )
    finally:
        race.close()
    assert race.raced is not None
    assert len(results) == 3
    empty, raced, too_long = results
    assert isinstance(empty, DomainError) and empty.code == "question.empty"
    assert isinstance(raced, AskResult) and not raced.created and raced.question["id"] == race.raced.question["id"]
    assert isinstance(too_long, DomainError) and too_long.code == "question.too_long"
