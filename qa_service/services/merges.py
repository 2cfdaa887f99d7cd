"""Merge chains: which question a merged one follows, and which ones follow a kept one.

A merged question (A) follows the question it was merged into (B); if B was merged
in turn (into C), A follows C, and so on for at most ``MAX_DEPTH`` links (a longer
chain, or a loop that undo made possible, is cut there). Every look-up reads one
query per link of the chain, however many questions it is asked about.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col

from ..db.models import Question
from ..domain.lifecycle import HIDDEN, Status

MAX_DEPTH = 5


@dataclass(frozen=True)
class Kept:
    """What a merged question's asker may learn of the question kept in its place:
    its status and reject reason, never its text or its asker."""

    status: Status
    reject_reason: str | None


def followed(db: Session, qs: Iterable[Question]) -> dict[int, Kept | None]:
    """For each merged question of ``qs``, the kept question at the end of its chain
    (None: the chain is broken, say the kept one was forgotten, or too long)."""
    current = {q.id: q.merged_into_id for q in qs if q.id is not None and q.status == Status.merged.value}
    out: dict[int, Kept | None] = {}
    for _ in range(MAX_DEPTH):
        targets = {t for t in current.values() if t is not None}
        rows = (
            {
                row.id: row
                for row in db.exec(
                    sa.select(  # type: ignore[call-overload]
                        col(Question.id),
                        col(Question.status),
                        col(Question.reject_reason),
                        col(Question.merged_into_id),
                    ).where(col(Question.id).in_(targets))
                )
            }
            if targets
            else {}
        )
        following: dict[int, int | None] = {}
        for qid, target in current.items():
            row = rows.get(target)
            if row is None:
                out[qid] = None
            elif row.status == Status.merged.value:
                following[qid] = row.merged_into_id
            else:
                out[qid] = Kept(Status(row.status), row.reject_reason)
        current = following
        if not current:
            break
    return out | dict.fromkeys(current)


def descendants(db: Session, roots: Iterable[int]) -> dict[int, list[int]]:
    """For each of ``roots``, the questions merged into it, directly or through
    another merged question (up to ``MAX_DEPTH`` links), ascending. A hidden
    question (a banned asker's) is never among them."""
    roots = list(dict.fromkeys(roots))
    if not roots:
        return {}
    children: dict[int, list[int]] = {}
    frontier = set(roots)
    expanded: set[int] = set()
    for _ in range(MAX_DEPTH):
        expanded |= frontier
        rows = db.exec(
            sa.select(col(Question.id), col(Question.merged_into_id)).where(  # type: ignore[call-overload]
                col(Question.merged_into_id).in_(frontier),
                col(Question.status) == Status.merged.value,
                sa.or_(col(Question.reject_reason).is_(None), col(Question.reject_reason) != HIDDEN),
            )
        ).all()
        for qid, parent in rows:
            children.setdefault(parent, []).append(qid)
        frontier = {qid for qid, _parent in rows} - expanded
        if not frontier:
            break
    out: dict[int, list[int]] = {}
    for root in roots:
        found: set[int] = set()
        level = [root]
        for _ in range(MAX_DEPTH):
            level = [c for parent in level for c in children.get(parent, []) if c not in found and c != root]
            found.update(level)
            if not level:
                break
        out[root] = sorted(found)
    return out


def kept_chain(db: Session, target_id: int | None) -> list[Question]:
    """The question ``target_id`` and, if it is merged itself, those it follows (the
    questions whose count of merged questions a merge into ``target_id`` changes)."""
    chain: list[Question] = []
    while target_id is not None and len(chain) < MAX_DEPTH:
        q = db.get(Question, target_id)
        if q is None or q in chain:
            break
        chain.append(q)
        target_id = q.merged_into_id if q.status == Status.merged.value else None
    return chain
