"""Who is asking (the sample event asks for a company and offers an answer by e-mail):
what is stored, who sees what, the speaker team's export and the contacts' retention,
on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from qa_service.bus import channels
from qa_service.db.models import Question, utcnow
from qa_service.domain.errors import DomainError
from qa_service.services import export, privacy, questions, snapshots

from .support import stream

pytestmark = pytest.mark.integration
CONSENT = {"email": "ana@example.org", "consent": True}


def _ask(ctx: Any, event_id: int, speaker: int, text: str, viewer: str = "viewer-ana", **extra: Any) -> dict[str, Any]:
    payload = {"client_id": uuid.uuid4().hex, "speaker_id": speaker, "text": text, "language": "en"} | extra
    return questions.ask(ctx, event_id, viewer, payload).question


def _count(ctx: Any) -> int:
    with ctx.read() as db:
        return int(db.exec(sa.select(sa.func.count()).select_from(Question)).one()[0])  # type: ignore[call-overload]


def test_fields_and_a_consented_address_are_stored_and_the_address_shown_to_nobody(ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    mine = _ask(ctx, event_id, speaker, "Do you export to Europe?", fields={"company": "Uralmash"}, contact=CONSENT)
    with ctx.read() as db:
        row = db.get(Question, mine["id"])
        assert row is not None
        assert (row.asker_fields, row.contact_email) == ({"company": "Uralmash"}, "ana@example.org")
        assert row.contact_consent_at is not None
    view = next(q for q in snapshots.moderator(ctx, event_id)["questions"] if q["id"] == mine["id"])
    assert (view["asker_fields"], view["wants_answer"]) == ({"company": "Uralmash"}, True)
    questions.moderate(ctx, event_id, mine["id"], "approve", "mod1", expected_version=None)
    (upsert,) = stream(ctx, event_id, channels.studio(sample["studios"]["moscow"].id), "queue.upsert")
    assert upsert["asker_fields"] == {"company": "Uralmash"}
    everywhere = (
        str(
            [
                stream(ctx, event_id, ch, t)
                for ch in (channels.MODERATION, channels.FEED)
                for t in ("question.created", "question.updated", "feed.upsert")
            ]
        )
        + str(snapshots.moderator(ctx, event_id))
        + str(snapshots.viewer_own(ctx, event_id, "viewer-ana"))
    )
    assert "ana@example.org" not in everywhere


@pytest.mark.parametrize(
    "extra, code",
    [
        ({"fields": {"salary": "1"}}, "question.field_unknown"),
        ({"fields": {"company": "x" * 81}}, "field.too_long"),
        ({"contact": {"email": "ana@example.org"}}, "question.consent_required"),
        ({"contact": {"email": "not an address", "consent": True}}, "question.email_invalid"),
    ],
)
def test_a_bad_field_or_contact_is_refused_and_stores_nothing(ctx, event_id, sample, extra, code) -> None:
    with pytest.raises(DomainError) as err:
        _ask(ctx, event_id, sample["speakers"]["moscow"][0].id, "Question?", **extra)
    assert err.value.code == code
    assert _count(ctx) == 0


def _rows(f: export.SpeakerFile) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(f.csv())))


def test_each_speakers_team_gets_its_unanswered_questions_with_the_consented_contacts(ctx, event_id, sample) -> None:
    anna, dmitry = sample["speakers"]["moscow"][0].id, sample["speakers"]["moscow"][1].id
    act = lambda qid, action, **kw: questions.moderate(ctx, event_id, qid, action, "mod1", expected_version=None, **kw)  # noqa: E731
    waiting = _ask(ctx, event_id, anna, '=HYPERLINK("http://evil")', fields={"company": "Uralmash"}, contact=CONSENT)
    answered = _ask(ctx, event_id, anna, "Answered on air?", viewer="viewer-b")
    merged = _ask(
        ctx,
        event_id,
        anna,
        "Merged into the answered one?",
        viewer="viewer-c",
        contact={"email": "c@example.org", "consent": True},
    )
    rejected = _ask(ctx, event_id, anna, "Off topic?", viewer="viewer-d")
    no_time = _ask(ctx, event_id, anna, "No time for it?", viewer="viewer-f")
    pending = _ask(ctx, event_id, anna, "Never looked at?", viewer="viewer-g")
    follower = _ask(ctx, event_id, anna, "Merged into the waiting one?", viewer="viewer-h")
    other = _ask(ctx, event_id, dmitry, "For Dmitry?", viewer="viewer-e")
    act(merged["id"], "merge", merged_into=answered["id"])
    act(follower["id"], "merge", merged_into=waiting["id"])
    for qid in (waiting["id"], answered["id"], other["id"]):
        act(qid, "approve")
    act(answered["id"], "on_air")
    act(answered["id"], "answer")
    act(rejected["id"], "reject", reason="off_topic")
    act(no_time["id"], "reject", reason="no_time")

    files = {f.speaker_id: f for f in export.unanswered(ctx, None)}
    assert {f.name for f in files.values()} >= {f"unanswered-{anna}-anna-sokolova.csv"}
    rows = _rows(files[anna])
    # Approved and not reached, one merged into it, one turned down for lack of time; not
    # the answered one (nor its merged), not a pending one, not one rejected for its words.
    assert [int(r["question_id"]) for r in rows] == [waiting["id"], no_time["id"], follower["id"]]
    assert pending["id"] not in {int(r["question_id"]) for r in rows}
    first = rows[0]
    assert first["question"] == '\'=HYPERLINK("http://evil")'  # opens as text in a spreadsheet
    assert (first["field_company"], first["wants_answer"], first["email"]) == ("Uralmash", "yes", "ana@example.org")
    assert first["consent_at"] and first["asked_at"].endswith("Z")
    assert (rows[1]["status"], rows[1]["email"]) == ("rejected", "")
    assert [int(r["question_id"]) for r in _rows(files[dmitry])] == [other["id"]]
    (only,) = export.unanswered(ctx, None, dmitry)
    assert only.speaker_id == dmitry
    with pytest.raises(DomainError):
        export.unanswered(ctx, None, 999_999)


def test_contacts_are_forgotten_after_their_retention(ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    qid = _ask(ctx, event_id, speaker, "Answer me later?", contact=CONSENT)["id"]
    assert privacy.purge_contacts(ctx) == 0  # the event has not even ended
    with ctx.read() as db:
        last = max(end for _e, end in privacy._last_ends(db))
    assert privacy.purge_contacts(ctx, now=last + timedelta(days=29)) == 0
    assert privacy.purge_contacts(ctx, now=last + timedelta(days=30, minutes=1)) == 1
    with ctx.read() as db:
        row = db.get(Question, qid)
        assert row is not None and (row.contact_email, row.contact_consent_at) == (None, None)
        assert row.text == "Answer me later?"  # the question itself stays (until the event's own retention)
    assert privacy.purge_contacts(ctx, now=utcnow() + timedelta(days=400)) == 0
    with ctx.read() as db:
        assert db.exec(select(Question).where(Question.contact_email.is_not(None))).all() == []  # type: ignore[union-attr]
