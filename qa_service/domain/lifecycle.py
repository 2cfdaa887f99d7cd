"""Question life cycle: which action moves a question from which status to which.

    pending ──approve──▶ approved ──enqueue──▶ queued ──on_air──▶ on_air ──answer──▶ answered
       │                    │  ▲                 │  ▲                │
       │                    │  └────dequeue──────┘  └─────skip───────┘
       ├──reject──▶ rejected ──reopen──▶ pending
       └──merge───▶ merged (into another question)

reject and merge are allowed from pending, approved and queued.  Every change
bumps the version; an action naming a stale version is refused.

Some requests take two arrows at once (``steps``): approve then enqueue (approve,
by default), and, for a moderator, enqueue then on_air (putting an approved
question on air directly, say one taken out of the queue a moment ago).

A merged question has no life of its own: its asker sees the status of the
question it was merged into (``viewer_status`` of that one).

Undo restores the status a question had before its last request, but only along
these arrows or a request's two of them (backwards, or forwards again when an undo
is undone), and never puts a question on air while another question of its studio
is on air.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from .errors import Conflict, DomainError


class Status(enum.StrEnum):
    pending = "pending"
    approved = "approved"
    queued = "queued"
    on_air = "on_air"
    answered = "answered"
    rejected = "rejected"
    merged = "merged"


class Action(enum.StrEnum):
    approve = "approve"
    enqueue = "enqueue"
    dequeue = "dequeue"
    on_air = "on_air"
    skip = "skip"
    answer = "answer"
    reject = "reject"
    reopen = "reopen"
    merge = "merge"


_OPEN = (Status.pending, Status.approved, Status.queued)

TRANSITIONS: dict[Action, tuple[tuple[Status, ...], Status]] = {
    Action.approve: ((Status.pending,), Status.approved),
    Action.enqueue: ((Status.approved,), Status.queued),
    Action.dequeue: ((Status.queued,), Status.approved),
    Action.on_air: ((Status.queued,), Status.on_air),
    Action.skip: ((Status.on_air,), Status.queued),
    Action.answer: ((Status.on_air,), Status.answered),
    Action.reject: (_OPEN, Status.rejected),
    Action.reopen: ((Status.rejected,), Status.pending),
    Action.merge: (_OPEN, Status.merged),
}

# Requests that take two arrows at once: (action asked, status it starts from) -> the steps.
COMPOUND: dict[tuple[Action, Status], tuple[Action, Action]] = {
    (Action.approve, Status.pending): (Action.approve, Action.enqueue),  # approve into the queue
    (Action.on_air, Status.approved): (Action.enqueue, Action.on_air),  # a moderator's "on air now"
}

# The reject reason of a banned viewer's questions: stored rejected, never shown to
# moderators or hosts, and to the asker as if still waiting.
HIDDEN = "hidden"
# Reject reasons the viewer page shows in the asker's language (the console's presets).
REASON_PRESETS = frozenset({"duplicate", "off_topic", "answered", "inappropriate", "no_time"})
# The presets the asker of a merged question may be told of the kept one's rejection:
# about the topic or the time, never a judgement of another person's words.
FOLLOWER_REASONS = REASON_PRESETS - {"inappropriate"}

# Statuses a studio's host (and its public display) may ever see.
HOST_VISIBLE = frozenset({Status.queued, Status.on_air, Status.answered})
# Statuses that count as "approved" for anyone outside the moderation team.
PUBLICLY_APPROVED = frozenset({Status.approved, Status.queued, Status.on_air, Status.answered})


@dataclass(frozen=True)
class QuestionState:
    status: Status
    version: int
    reject_reason: str | None = None
    merged_into: int | None = None


def check_version(current: int, expected: int | None, *, subject: str = "question") -> None:
    """Optimistic concurrency: a writer naming a version other than the current one loses."""
    if expected is not None and expected != current:
        raise Conflict(
            f"{subject}.stale_version",
            f"the {subject} changed meanwhile (version {current}, you had {expected}); reload it",
            current_version=current,
        )


def transition(
    state: QuestionState,
    action: Action,
    *,
    expected_version: int | None,
    reason: str | None = None,
    merged_into: int | None = None,
) -> QuestionState:
    """Return the state after ``action`` or raise ``DomainError``."""
    check_version(state.version, expected_version)
    allowed_from, target = TRANSITIONS[action]
    if state.status not in allowed_from:
        raise Conflict(
            "question.illegal_transition",
            f"cannot {action.value} a question that is {state.status.value}",
            status=state.status.value,
            action=action.value,
        )
    if action is Action.reject:
        reason = (reason or "").strip()
        if not reason:
            raise DomainError("question.reason_required", "a reason is required to reject a question")
        return replace(state, status=target, version=state.version + 1, reject_reason=reason[:200])
    if action is Action.merge:
        if merged_into is None:
            raise DomainError("question.merge_target_required", "name the question to merge into")
        return replace(state, status=target, version=state.version + 1, merged_into=merged_into)
    return replace(state, status=target, version=state.version + 1, reject_reason=None)


def steps(action: Action, status: Status, *, enqueue: bool = True, from_approved: bool = False) -> list[Action]:
    """The arrows one request takes from ``status``: ``action`` alone, or a
    ``COMPOUND`` request: approve also enqueues unless ``enqueue`` is false; on_air
    of an approved question enqueues it first if ``from_approved`` (moderators; a
    host only ever puts a queued question on air). Each step is still checked by
    ``transition``."""
    wanted = {Action.approve: enqueue, Action.on_air: from_approved}.get(action, False)
    compound = COMPOUND.get((action, status))
    return list(compound) if compound and wanted else [action]


def _undo_moves() -> frozenset[tuple[Status, Status]]:
    """(current, restored) pairs an undo may produce: one request backwards (an
    action, or a compound request) or, when an undo is undone, forwards again."""
    forward = {(s, target) for froms, target in TRANSITIONS.values() for s in froms}
    for (_action, start), compound in COMPOUND.items():
        forward.add((start, TRANSITIONS[compound[-1]][1]))
    return frozenset(forward | {(b, a) for a, b in forward})


UNDO_MOVES = _undo_moves()


def undo(
    state: QuestionState, earlier: QuestionState, *, expected_version: int | None, on_air_elsewhere: int | None
) -> QuestionState:
    """Return ``state`` restored to ``earlier`` (its status, reject reason and merge
    target), or raise. ``on_air_elsewhere``: another question on air in the studio."""
    check_version(state.version, expected_version)
    if (state.status, earlier.status) not in UNDO_MOVES:
        raise Conflict(
            "undo.illegal",
            f"undo cannot make a question that is {state.status.value} {earlier.status.value} again",
            status=state.status.value,
            restore=earlier.status.value,
        )
    if earlier.status is Status.on_air and on_air_elsewhere is not None:
        raise Conflict(
            "studio.on_air_taken",
            f"question {on_air_elsewhere} is on air in this studio now; answer or skip it first",
            on_air=on_air_elsewhere,
        )
    return replace(earlier, version=state.version + 1)


def bump(state: QuestionState, *, expected_version: int | None) -> QuestionState:
    """A change that keeps the status (an edited translation, a new position)."""
    check_version(state.version, expected_version)
    return replace(state, version=state.version + 1)


def viewer_status(status: Status, reject_reason: str | None = None) -> str:
    """The status word a viewer sees for their own question. A hidden one (a banned
    asker's) reads as received: the ban is not revealed. A merged one reads as
    approved here; the viewer's view follows the question it was merged into."""
    if status is Status.rejected and reject_reason == HIDDEN:
        return "received"
    return {
        Status.pending: "received",
        Status.approved: "approved",
        Status.queued: "approved",
        Status.on_air: "on_air",
        Status.answered: "answered",
        Status.rejected: "not_selected",
        Status.merged: "approved",
    }[status]


def viewer_reason(status: Status, reject_reason: str | None, *, presets_only: bool = False) -> str | None:
    """The reason a viewer is shown: a rejected question's, never the hidden marker.
    ``presets_only``: only a neutral preset (the asker of a merged question is told the
    kept question's fate, not a moderator's words or verdict on another person's question)."""
    if status is not Status.rejected or reject_reason == HIDDEN:
        return None
    if presets_only and reject_reason not in FOLLOWER_REASONS:
        return None
    return reject_reason
