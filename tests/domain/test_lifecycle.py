"""The pure life-cycle core: every legal transition, every refusal."""

from __future__ import annotations

import pytest

from qa_service.domain.errors import Conflict, DomainError
from qa_service.domain.lifecycle import (
    HIDDEN,
    TRANSITIONS,
    Action,
    QuestionState,
    Status,
    steps,
    transition,
    viewer_reason,
    viewer_status,
)

LEGAL = [
    (Status.pending, Action.approve, Status.approved),
    (Status.approved, Action.enqueue, Status.queued),
    (Status.queued, Action.dequeue, Status.approved),
    (Status.queued, Action.on_air, Status.on_air),
    (Status.on_air, Action.skip, Status.queued),
    (Status.on_air, Action.answer, Status.answered),
    (Status.pending, Action.reject, Status.rejected),
    (Status.approved, Action.reject, Status.rejected),
    (Status.queued, Action.reject, Status.rejected),
    (Status.rejected, Action.reopen, Status.pending),
    (Status.pending, Action.merge, Status.merged),
    (Status.approved, Action.merge, Status.merged),
    (Status.queued, Action.merge, Status.merged),
]


def _extra(action: Action) -> dict[str, object]:
    return {"reason": "off topic"} if action is Action.reject else {"merged_into": 7} if action is Action.merge else {}


@pytest.mark.parametrize(("start", "action", "end"), LEGAL)
def test_legal_transition_moves_and_bumps_version(start: Status, action: Action, end: Status) -> None:
    after = transition(QuestionState(start, 3), action, expected_version=3, **_extra(action))  # type: ignore[arg-type]
    assert after.status is end
    assert after.version == 4


def test_the_table_has_exactly_the_legal_transitions() -> None:
    table = {(s, a, t) for a, (froms, t) in TRANSITIONS.items() for s in froms}
    assert table == set(LEGAL)


ILLEGAL = [(s, a) for s in Status for a in Action if (s, a) not in {(x, y) for x, y, _ in LEGAL}]


@pytest.mark.parametrize(("start", "action"), ILLEGAL)
def test_illegal_transition_is_refused(start: Status, action: Action) -> None:
    with pytest.raises(Conflict) as err:
        transition(QuestionState(start, 1), action, expected_version=1, **_extra(action))  # type: ignore[arg-type]
    assert err.value.code == "question.illegal_transition"
    assert start.value in err.value.message


def test_stale_version_is_refused_before_anything_else() -> None:
    with pytest.raises(Conflict) as err:
        transition(QuestionState(Status.pending, 5), Action.approve, expected_version=4)
    assert err.value.code == "question.stale_version"
    assert err.value.details["current_version"] == 5


def test_reject_needs_a_reason_and_keeps_it() -> None:
    with pytest.raises(DomainError) as err:
        transition(QuestionState(Status.pending, 1), Action.reject, expected_version=1, reason="  ")
    assert err.value.code == "question.reason_required"
    after = transition(QuestionState(Status.pending, 1), Action.reject, expected_version=1, reason="duplicate")
    assert after.reject_reason == "duplicate"
    reopened = transition(after, Action.reopen, expected_version=2)
    assert reopened.status is Status.pending and reopened.reject_reason is None


def test_merge_needs_a_target() -> None:
    with pytest.raises(DomainError) as err:
        transition(QuestionState(Status.pending, 1), Action.merge, expected_version=1)
    assert err.value.code == "question.merge_target_required"


def test_viewer_sees_plain_words() -> None:
    assert viewer_status(Status.pending) == "received"
    assert viewer_status(Status.queued) == "approved"
    assert viewer_status(Status.on_air) == "on_air"
    assert viewer_status(Status.answered) == "answered"
    assert viewer_status(Status.rejected) == "not_selected"


def test_a_hidden_question_reads_as_received_without_a_reason() -> None:
    assert viewer_status(Status.rejected, HIDDEN) == "received"
    assert viewer_reason(Status.rejected, HIDDEN) is None
    assert viewer_status(Status.rejected, "off_topic") == "not_selected"
    assert viewer_reason(Status.rejected, "off_topic") == "off_topic"


def test_a_merged_asker_is_told_only_preset_reasons() -> None:
    assert viewer_reason(Status.rejected, "duplicate", presets_only=True) == "duplicate"
    assert viewer_reason(Status.rejected, "Rude, Bob", presets_only=True) is None
    assert viewer_reason(Status.rejected, "inappropriate", presets_only=True) is None  # a verdict on another's words
    assert viewer_reason(Status.rejected, "inappropriate") == "inappropriate"  # the asker's own question
    assert viewer_reason(Status.answered, None, presets_only=True) is None


def test_requests_of_two_steps() -> None:
    assert steps(Action.approve, Status.pending) == [Action.approve, Action.enqueue]
    assert steps(Action.approve, Status.pending, enqueue=False) == [Action.approve]
    # A moderator puts an approved question on air through the queue; a host cannot.
    assert steps(Action.on_air, Status.approved, from_approved=True) == [Action.enqueue, Action.on_air]
    assert steps(Action.on_air, Status.approved) == [Action.on_air]
    assert steps(Action.on_air, Status.queued, from_approved=True) == [Action.on_air]
    state = QuestionState(Status.approved, 4)
    for n, action in enumerate(steps(Action.on_air, Status.approved, from_approved=True)):
        state = transition(state, action, expected_version=4 + n)
    assert state == QuestionState(Status.on_air, 6)
