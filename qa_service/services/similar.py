"""Similar questions: the database side of qa_service/domain/similarity.py.

Called by the translation worker in the transaction that stores a question's
translations (workers/translate.py), so the ``question.updated`` it publishes to the
moderators carries ``similar_to`` with them. Candidates are the open questions
(pending, approved, queued) of the same studio asked before it: a merge is only
allowed within a studio, and the earlier question is the one to keep. At most
``CANDIDATE_LIMIT`` of them, newest first: the cost per new question is bounded
(two queries, and a few milliseconds of scoring at the limit; see
``python -m workers.bench_similarity``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col

from ..db.models import Question, Translation
from ..domain import similarity
from ..domain.lifecycle import Status

CANDIDATE_LIMIT = 500
OPEN = (Status.pending.value, Status.approved.value, Status.queued.value)


def texts_of(db: Session, q: Question) -> dict[str, str]:
    """{language: text}: the question's original and every translation stored so far
    (a moderator's edit included; rows added in this transaction included)."""
    assert q.id is not None
    out = {q.language: q.text}
    rows = db.exec(
        sa.select(col(Translation.language), col(Translation.text)).where(  # type: ignore[call-overload]
            col(Translation.question_id) == q.id
        )
    )
    for language, text in rows:
        if text and language != q.language:
            out[language] = text
    return out


def candidates(db: Session, q: Question, languages: set[str]) -> list[similarity.Candidate]:
    """The open questions of ``q``'s studio asked before it, newest first, with their
    texts in ``languages`` (only a language ``q`` has can be compared in)."""
    rows = list(
        db.exec(
            sa.select(col(Question.id), col(Question.language), col(Question.text))  # type: ignore[call-overload]
            .where(
                col(Question.event_id) == q.event_id,
                col(Question.studio_id) == q.studio_id,
                col(Question.id) < q.id,
                col(Question.status).in_(OPEN),
            )
            .order_by(col(Question.id).desc())
            .limit(CANDIDATE_LIMIT)
        )
    )
    texts: dict[int, dict[str, str]] = {qid: {lang: text} for qid, lang, text in rows}
    if texts:
        for qid, lang, text in db.exec(
            sa.select(  # type: ignore[call-overload]
                col(Translation.question_id), col(Translation.language), col(Translation.text)
            ).where(col(Translation.question_id).in_(list(texts)), col(Translation.language).in_(sorted(languages)))
        ):
            if text:
                texts[qid].setdefault(lang, text)
    return [similarity.Candidate(qid, t) for qid, t in texts.items()]


def refresh(db: Session, q: Question, moderator_language: str) -> bool:
    """Set ``q.similar_ids`` from what is stored now (call after its translations are
    written, in the same transaction); True if it changed. Not added to the session."""
    own = texts_of(db, q)
    found = similarity.most_similar(own, candidates(db, q, set(own)), moderator_language, own_language=q.language)
    new = found or None
    if (q.similar_ids or None) == new:
        return False
    q.similar_ids = new
    return True
