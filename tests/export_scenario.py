"""A marathon in the middle of its day, for the export tests (services, REST, CLI,
browser): questions pending, approved, queued, on air, answered, merged, rejected,
one that looks like a spreadsheet formula, one with a consented e-mail address, one
of a banned asker (hidden), one in another studio."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from qa_service.db.models import Speaker
from qa_service.services import feed, questions, schedule
from qa_service.services.context import Context

FORMULA = '=HYPERLINK("http://evil.example","click")'
EMAIL = "ana@example.org"


@dataclass
class MidEvent:
    ids: dict[str, int]  # label -> question id
    anna: int  # speaker ids (Moscow)
    dmitry: int
    other_speaker: int  # a speaker of another studio
    moscow: int  # studio ids
    other_studio: int


def ask(ctx: Context, event_id: int, speaker: int, text: str, viewer: str, **extra: Any) -> int:
    payload = {"client_id": uuid.uuid4().hex, "speaker_id": speaker, "text": text, "language": "en"} | extra
    return int(questions.ask(ctx, event_id, viewer, payload).question["id"])


def mid_event(ctx: Context, event_id: int, sample: dict[str, Any]) -> MidEvent:
    anna, dmitry = (sp.id for sp in sample["speakers"]["moscow"][:2])
    other_slug = "cairo"
    speaker: Speaker = sample["speakers"][other_slug][0]
    other = speaker.id
    schedule.set_status(ctx, event_id, speaker.segment_id, "live", "mod2")  # its studio goes live by hand

    def act(qid: int, action: str, **kw: Any) -> None:
        questions.moderate(ctx, event_id, qid, action, "mod1", expected_version=None, from_approved=True, **kw)

    ids = {
        "answered": ask(ctx, event_id, anna, "How many people work at the plant?", "viewer-a"),
        "on_air": ask(ctx, event_id, anna, "When does the new line open?", "viewer-b"),
        "queued": ask(ctx, event_id, anna, "Do you export to Europe?", "viewer-c"),
        "approved": ask(ctx, event_id, dmitry, "Which steel grades do you make?", "viewer-d"),
        "pending": ask(
            ctx,
            event_id,
            anna,
            "Can I visit the plant?",
            "viewer-e",
            display_name="Ana",
            country="PT",
            fields={"company": "Uralmash"},
            contact={"email": EMAIL, "consent": True},
        ),
        "merged": ask(ctx, event_id, anna, "Is Europe a market for you?", "viewer-f"),
        "rejected": ask(ctx, event_id, anna, "Buy my product!", "viewer-spam"),
        "formula": ask(ctx, event_id, dmitry, FORMULA, "viewer-g", fields={"company": "+7 Minus & Co"}),
        "elsewhere": ask(ctx, event_id, other, "A question for another studio?", "viewer-h"),
    }
    act(ids["answered"], "approve")
    act(ids["answered"], "on_air")
    act(ids["on_air"], "approve")
    act(ids["on_air"], "on_air")  # the one on air before becomes answered
    act(ids["queued"], "approve")
    act(ids["approved"], "approve", enqueue=False)
    act(ids["merged"], "merge", merged_into=ids["queued"])
    act(ids["rejected"], "reject", reason="off_topic")
    questions.edit_translation(
        ctx, event_id, ids["queued"], "ru", "Вы экспортируете в Европу?", "mod1", expected_version=None
    )
    for viewer in ("viewer-x", "viewer-y"):
        feed.vote(ctx, event_id, viewer, {"question_id": ids["queued"], "vote": True})
    questions.ban_asker(ctx, event_id, ids["rejected"], "mod1", address_minutes=0)
    ids["hidden"] = ask(ctx, event_id, anna, "Buy it now!", "viewer-spam")
    studio_of = {sp.id: slug for slug, sps in sample["speakers"].items() for sp in sps}
    return MidEvent(ids, anna, dmitry, other, sample["studios"]["moscow"].id, sample["studios"][studio_of[other]].id)
