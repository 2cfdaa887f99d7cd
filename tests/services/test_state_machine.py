"""A property-based state machine over the question services: two moderators and a
host act on two live studios, often with versions that went stale meanwhile.
After every step the database must hold the invariants, on SQLite and PostgreSQL:

* at most one question on air per studio;
* a question is queued or on air only while it is approved: the test keeps its own
  model of each question's approval (set by approve, cleared by reject, merge and
  reopen, put back as it was by an undo) and the database must agree with it, so
  nothing pending, rejected or merged ever reaches a queue or the air;
* queue positions are set and unique within a studio's queue;
* the newest ``queue.order`` on the bus is the studio's order in the database;
* a merged question's asker sees the status of the question at the end of its
  merge chain (followed for at most five links).
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlmodel import select

from qa_service.db.models import ModerationAction, Question, Studio, Translation
from qa_service.domain.errors import DomainError
from qa_service.domain.lifecycle import PUBLICLY_APPROVED, Status, viewer_status
from qa_service.services import questions, schedule, snapshots

from .support import ask, stream

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 40
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    stateful_step_count=40,
    deadline=None,
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.too_slow],
)
MODERATORS = ("mod1", "mod2")
# Refusals a caller may meet; anything else (an IntegrityError, a 500) fails the test.
EXPECTED = {
    "question.stale_version",
    "question.illegal_transition",
    "question.merge_target_closed",
    "question.merge_self",
    "question.merge_other_studio",
    "queue.stale_version",
    "queue.mismatch",
    "queue.not_in_queue",
    "queue.empty",
    "undo.nothing",
    "undo.stale",
    "undo.illegal",
    "studio.on_air_taken",
}
# Mostly a fresh version (consoles and the host display get events live); sometimes
# the one the actor last saw itself (lagging), one stale on purpose, or none.
VERSIONS = st.sampled_from(["fresh", "fresh", "fresh", "seen", "stale", "none"])
# A question picked by index: mostly among those the action fits, sometimes any at all.
PICK = st.tuples(st.integers(0, 30), st.sampled_from([True, True, True, False]))
# What a decision leaves the question's approval at; other actions keep it.
DECIDES = {"approve": True, "reject": False, "merge": False, "reopen": False}


@pytest.mark.timeout(600)  # a failure shrinks for up to 5 minutes (Hypothesis' own limit)
def test_two_moderators_and_a_host_keep_the_invariants(ctx, event_id, sample) -> None:
    jakarta = sample["segments"][sample["studios"]["jakarta"].id]
    schedule.set_status(ctx, event_id, jakarta.id, "live", "mod1")
    speakers = [sample["speakers"]["moscow"][0].id, sample["speakers"]["jakarta"][0].id]
    studios = [sample["studios"]["moscow"].id, sample["studios"]["jakarta"].id]
    runs: list[int] = []

    class Studios(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            with ctx.transaction() as (db, _):
                for table in (ModerationAction, Translation, Question):
                    db.exec(sa.delete(table))  # type: ignore[call-overload]
                self.baseline = {s.id: s.queue_version for s in db.exec(select(Studio))}
            # Per actor, the versions last seen (a console's view, which may lag).
            self.seen: dict[str, dict[int, int]] = {a: {} for a in (*MODERATORS, "host")}
            self.queue_seen: dict[str, dict[int, int]] = {a: {} for a in MODERATORS}
            # The model: is a question approved now, and what was it before each request on it.
            self.approved: dict[int, bool] = {}
            self.before: dict[int, list[bool]] = {}
            self.recent: list[int] = []  # questions by their latest request, newest last
            runs.append(1)

        # ── helpers ───────────────────────────────────────────────────────
        def _pick(self, pick: tuple[int, bool], *fits: Status) -> int | None:
            """A question by index: among those in ``fits`` (if the pick says so), else any."""
            index, fitting = pick
            stmt = select(Question.id).order_by(Question.id)  # type: ignore[arg-type]
            if fitting and fits:
                stmt = stmt.where(Question.status.in_([s.value for s in fits]))  # type: ignore[attr-defined]
            with ctx.read() as db:
                ids = list(db.exec(stmt))
            return ids[index % len(ids)] if ids else None

        def _version(self, actor: str, qid: int, mode: str) -> int | None:
            with ctx.read() as db:
                q = db.get(Question, qid)
                assert q is not None
                fresh = q.version
            return {"seen": self.seen[actor].get(qid, 1), "fresh": fresh, "stale": fresh - 1, "none": None}[mode]

        def _call(self, actor: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                result = fn(ctx, event_id, *args, **kwargs)
            except DomainError as exc:
                note(f"{actor} {fn.__name__}{args}: refused {exc.code}")
                assert exc.code in EXPECTED, exc.code
                return None
            note(f"{actor} {fn.__name__}{args}: ok")
            if isinstance(result, dict) and "version" in result:
                self.seen[actor][result["id"]] = result["version"]
            return result

        def _request(self, qid: int, decision: str | None) -> None:
            """A request on a question succeeded: remember its approval before it."""
            self.before.setdefault(qid, []).append(self.approved[qid])
            self.recent = [i for i in self.recent if i != qid] + [qid]
            if decision in DECIDES:
                self.approved[qid] = DECIDES[decision]

        def _moderate(self, actor: str, qid: int | None, action: str, mode: str, **kwargs: Any) -> None:
            if qid is None:
                return
            with ctx.read() as db:
                q = db.get(Question, qid)
                assert q is not None
                on_air = select(Question.id).where(Question.studio_id == q.studio_id, Question.status == "on_air")
                was_on_air = [i for i in db.exec(on_air) if i != qid]
            version = self._version(actor, qid, mode)
            if self._call(actor, questions.moderate, qid, action, actor, expected_version=version, **kwargs):
                if action == "on_air":  # the studio's previous one was answered: a request on it
                    for other in was_on_air:
                        self._request(other, "answer")
                self._request(qid, action)

        @initialize(
            asks=st.lists(
                st.tuples(st.sampled_from(speakers), st.sampled_from(["pending", "approved", "queued"])), max_size=6
            )
        )
        def programme(self, asks: list[tuple[int, str]]) -> None:
            """Start from some questions, some of them approved or queued already."""
            for speaker, status in asks:
                qid = ask(ctx, event_id, speaker)
                self.approved[qid] = False
                if status != "pending":
                    self._moderate("mod1", qid, "approve", "fresh", enqueue=status == "queued")

        # ── viewers ───────────────────────────────────────────────────────
        @rule(speaker=st.sampled_from(speakers))
        def viewer_asks(self, speaker: int) -> None:
            self.approved[ask(ctx, event_id, speaker)] = False

        # ── moderators ────────────────────────────────────────────────────
        @rule(actor=st.sampled_from(MODERATORS), q=PICK, mode=VERSIONS, enqueue=st.booleans())
        def approve(self, actor: str, q: tuple[int, bool], mode: str, enqueue: bool) -> None:
            self._moderate(actor, self._pick(q, Status.pending), "approve", mode, enqueue=enqueue)

        @rule(actor=st.sampled_from(MODERATORS), q=PICK, mode=VERSIONS)
        def reject(self, actor: str, q: tuple[int, bool], mode: str) -> None:
            qid = self._pick(q, Status.pending, Status.approved, Status.queued)
            self._moderate(actor, qid, "reject", mode, reason="off_topic")

        @rule(actor=st.sampled_from(MODERATORS), q=PICK, into=PICK, mode=VERSIONS)
        def merge(self, actor: str, q: tuple[int, bool], into: tuple[int, bool], mode: str) -> None:
            qid = self._pick(q, Status.pending, Status.approved, Status.queued)
            self._moderate(actor, qid, "merge", mode, merged_into=self._pick(into))

        @rule(actor=st.sampled_from(MODERATORS), q=PICK, mode=VERSIONS)
        def reopen(self, actor: str, q: tuple[int, bool], mode: str) -> None:
            self._moderate(actor, self._pick(q, Status.rejected), "reopen", mode)

        @rule(actor=st.sampled_from(MODERATORS), q=PICK, mode=VERSIONS)
        def enqueue(self, actor: str, q: tuple[int, bool], mode: str) -> None:
            self._moderate(actor, self._pick(q, Status.approved), "enqueue", mode)

        @rule(actor=st.sampled_from(MODERATORS), q=PICK, mode=VERSIONS)
        def on_air_now(self, actor: str, q: tuple[int, bool], mode: str) -> None:
            """A moderator puts an approved (or queued) question on air in one request."""
            qid = self._pick(q, Status.approved, Status.queued)
            self._moderate(actor, qid, "on_air", mode, from_approved=True)

        @rule(actor=st.sampled_from(MODERATORS), q=PICK, mode=VERSIONS)
        def dequeue(self, actor: str, q: tuple[int, bool], mode: str) -> None:
            self._moderate(actor, self._pick(q, Status.queued), "dequeue", mode)

        @rule(actor=st.sampled_from(MODERATORS), q=PICK, mode=VERSIONS)
        def undo(self, actor: str, q: tuple[int, bool], mode: str) -> None:
            self._undo(actor, self._pick(q), mode)

        @rule(actor=st.sampled_from(MODERATORS), older=st.booleans(), mode=VERSIONS)
        def undo_just_now(self, actor: str, older: bool, mode: str) -> None:
            """What a moderator undoes most: one of the last two questions acted on."""
            recent = self.recent[-2:]
            if recent:
                self._undo(actor, recent[0 if older else -1], mode)

        def _undo(self, actor: str, qid: int | None, mode: str) -> None:
            if qid is None:
                return
            restored = self.before.get(qid, [])[-1:]  # the approval before the last request
            if self._call(actor, questions.undo, qid, actor, expected_version=self._version(actor, qid, mode)):
                self._request(qid, None)
                self.approved[qid] = restored[0]

        @rule(
            actor=st.sampled_from(MODERATORS),
            studio=st.sampled_from(studios),
            shuffle=st.randoms(use_true_random=False),
            mode=st.sampled_from(["seen", "fresh", "none"]),
        )
        def reorder(self, actor: str, studio: int, shuffle: random.Random, mode: str) -> None:
            with ctx.read() as db:
                order = [q.id for q in questions.queued_in(db, studio) if q.id]
                fresh = db.get(Studio, studio).queue_version  # type: ignore[union-attr]
            shuffle.shuffle(order)
            version = {"seen": self.queue_seen[actor].get(studio, 0), "fresh": fresh, "none": None}[mode]
            if self._call(actor, questions.reorder, studio, order, actor, expected_version=version) is not None:
                self.queue_seen[actor][studio] = fresh + 1

        @rule(actor=st.sampled_from(MODERATORS), studio=st.sampled_from(studios), q=PICK, index=st.integers(0, 4))
        def move(self, actor: str, studio: int, q: tuple[int, bool], index: int) -> None:
            qid = self._pick(q, Status.queued)
            if qid is not None:
                self._call(actor, questions.move, studio, qid, index, actor)

        @rule(actor=st.sampled_from(MODERATORS))
        def refresh(self, actor: str) -> None:
            """The console caught up with the events: fresh versions."""
            with ctx.read() as db:
                self.seen[actor] = {q.id: q.version for q in db.exec(select(Question)) if q.id}
                self.queue_seen[actor] = {s.id: s.queue_version for s in db.exec(select(Studio)) if s.id}

        # ── the host ──────────────────────────────────────────────────────
        @rule(studio=st.sampled_from(studios))
        def next(self, studio: int) -> None:
            """host.next: the first queued question goes on air (as the hub does it)."""
            with ctx.read() as db:
                first = questions.queued_in(db, studio)[:1]
            if first and first[0].id:
                self._moderate("host", first[0].id, "on_air", "fresh")

        @rule(q=PICK, mode=VERSIONS)
        def on_air(self, q: tuple[int, bool], mode: str) -> None:
            self._moderate("host", self._pick(q, Status.queued), "on_air", mode)

        @rule(q=PICK, mode=VERSIONS)
        def answer(self, q: tuple[int, bool], mode: str) -> None:
            self._moderate("host", self._pick(q, Status.on_air), "answer", mode)

        @rule(q=PICK, mode=VERSIONS)
        def skip(self, q: tuple[int, bool], mode: str) -> None:
            self._moderate("host", self._pick(q, Status.on_air), "skip", mode)

        # ── invariants ────────────────────────────────────────────────────
        @invariant()
        def one_on_air_per_studio(self) -> None:
            with ctx.read() as db:
                on_air = [q.studio_id for q in db.exec(select(Question).where(Question.status == "on_air"))]
            assert len(on_air) == len(set(on_air)), on_air

        @invariant()
        def queued_and_on_air_only_while_approved(self) -> None:
            with ctx.read() as db:
                rows = list(db.exec(select(Question)))
            for q in rows:
                assert q.id is not None
                assert (Status(q.status) in PUBLICLY_APPROVED) == self.approved[q.id], (q.id, q.status)

        @invariant()
        def queue_positions_unique(self) -> None:
            with ctx.read() as db:
                queued = list(db.exec(select(Question).where(Question.status == "queued")))
            positions = [(q.studio_id, q.queue_position) for q in queued]
            assert all(p is not None for _, p in positions) and len(set(positions)) == len(positions), positions

        @invariant()
        def newest_order_on_the_bus_is_the_database_order(self) -> None:
            for studio in studios:
                with ctx.read() as db:
                    version = db.get(Studio, studio).queue_version  # type: ignore[union-attr]
                    order = [q.id for q in questions.queued_in(db, studio)]
                if version == self.baseline[studio]:
                    continue  # nothing announced in this example yet
                newest = max(stream(ctx, event_id, f"studio:{studio}", "queue.order"), key=lambda o: o["version"])
                assert newest["version"] == version and newest["order"] == order

        @invariant()
        def merged_askers_follow_the_end_of_their_chain(self) -> None:
            with ctx.read() as db:
                rows = {q.id: q for q in db.exec(select(Question))}
            own = {q["id"]: q for q in snapshots.viewer_own(ctx, event_id, "viewer-0001")["questions"]}
            for q in rows.values():
                assert own[q.id]["merged"] is (q.status == "merged")
                end, links = q, 0
                while end.status == "merged" and end.merged_into_id in rows and links < 5:
                    end, links = rows[end.merged_into_id], links + 1
                expected = viewer_status(Status(end.status), end.reject_reason)
                assert own[q.id]["status"] == expected, (q.id, q.status, end.id, end.status)

    run_state_machine_as_test(Studios, settings=SETTINGS)
    assert len(runs) >= MAX_EXAMPLES
