"""Undo in the pure core: only along the life cycle's arrows, never a second on air."""

from __future__ import annotations

import pytest

from qa_service.domain import queue
from qa_service.domain.errors import Conflict
from qa_service.domain.lifecycle import TRANSITIONS, UNDO_MOVES, QuestionState, Status, undo

# One arrow, or one request of two: approve + enqueue, and a moderator's enqueue + on_air.
FORWARD = {(s, t) for froms, t in TRANSITIONS.values() for s in froms} | {
    (Status.pending, Status.queued),
    (Status.approved, Status.on_air),
}


def test_undo_moves_are_requests_backwards_or_forwards_again() -> None:
    assert UNDO_MOVES == FORWARD | {(t, s) for s, t in FORWARD}
    assert (Status.answered, Status.on_air) in UNDO_MOVES  # an answer taken back
    assert (Status.queued, Status.pending) in UNDO_MOVES  # approve + enqueue taken back
    assert (Status.on_air, Status.approved) in UNDO_MOVES  # "on air now" of an approved one taken back
    assert (Status.answered, Status.queued) not in UNDO_MOVES and (Status.merged, Status.on_air) not in UNDO_MOVES


@pytest.mark.parametrize(("current", "restored"), sorted(UNDO_MOVES))
def test_undo_restores_the_earlier_state_with_a_new_version(current: Status, restored: Status) -> None:
    earlier = QuestionState(restored, 2, "duplicate" if restored is Status.rejected else None)
    after = undo(QuestionState(current, 5), earlier, expected_version=5, on_air_elsewhere=None)
    assert after == QuestionState(restored, 6, earlier.reject_reason)


NOT_UNDO = [(a, b) for a in Status for b in Status if (a, b) not in UNDO_MOVES]


@pytest.mark.parametrize(("current", "restored"), NOT_UNDO)
def test_undo_refuses_jumps_the_life_cycle_does_not_know(current: Status, restored: Status) -> None:
    with pytest.raises(Conflict) as err:
        undo(QuestionState(current, 1), QuestionState(restored, 1), expected_version=None, on_air_elsewhere=None)
    assert err.value.code == "undo.illegal"


@pytest.mark.parametrize("current", [Status.answered, Status.queued])
def test_undo_never_puts_a_second_question_on_air(current: Status) -> None:
    state, earlier = QuestionState(current, 4), QuestionState(Status.on_air, 3)
    with pytest.raises(Conflict) as err:
        undo(state, earlier, expected_version=4, on_air_elsewhere=17)
    assert err.value.code == "studio.on_air_taken" and err.value.details == {"on_air": 17}
    assert undo(state, earlier, expected_version=4, on_air_elsewhere=None).status is Status.on_air


def test_undo_with_a_stale_version_is_refused_first() -> None:
    with pytest.raises(Conflict) as err:
        undo(
            QuestionState(Status.answered, 4), QuestionState(Status.pending, 1), expected_version=3, on_air_elsewhere=9
        )
    assert err.value.code == "question.stale_version"


def test_a_stale_queue_version_loses() -> None:
    queue.check_version(7, None)
    queue.check_version(7, 7)
    with pytest.raises(Conflict) as err:
        queue.check_version(7, 6)
    assert err.value.code == "queue.stale_version" and err.value.details == {"current_version": 7}
