"""Order of a studio's host queue: pure functions over lists of question ids."""

from __future__ import annotations

from .errors import DomainError
from .lifecycle import check_version as _check_version


def check_version(current: int, expected: int | None) -> None:
    """A queue change naming another queue version than the studio's loses (queue.stale_version)."""
    _check_version(current, expected, subject="queue")


def move(order: list[int], question_id: int, new_index: int) -> list[int]:
    """Return ``order`` with ``question_id`` moved to ``new_index`` (clamped)."""
    if question_id not in order:
        raise DomainError("queue.not_in_queue", "that question is not in this studio's queue")
    rest = [q for q in order if q != question_id]
    index = max(0, min(new_index, len(rest)))
    return rest[:index] + [question_id] + rest[index:]


def check_same_members(current: list[int], proposed: list[int]) -> None:
    """A full reorder must name exactly the questions in the queue, once each."""
    if sorted(current) != sorted(proposed) or len(set(proposed)) != len(proposed):
        raise DomainError(
            "queue.mismatch",
            "the order must list every question in the queue exactly once; reload the queue",
        )
