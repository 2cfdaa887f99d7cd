"""The feed in its readers' languages (workers/feed.py): the real test models, real
Redis and SQL. Spanish reaches Russian and German only through English."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qa_service.bus import channels
from qa_service.services import feed, questions
from qa_service.services.context import Context
from workers import feed as feed_jobs

from ..services.support import stream
from .conftest import ask, phrases, translations

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(argos_dir: Path) -> Any:
    from workers.engine import ArgosEngine

    return ArgosEngine()


def _approve(ctx: Context, event_id: int, qid: int) -> None:
    questions.moderate(ctx, event_id, qid, "approve", "mod1", expected_version=None)


def test_the_feed_is_translated_into_the_languages_read_once_through_english(ctx, event_id, sample, engine) -> None:
    row = phrases()[3]  # "Do you export to Europe?"
    speaker = sample["speakers"]["moscow"][0].id
    qid = ask(ctx, event_id, speaker, row["es"], "es")
    pending = ask(ctx, event_id, speaker, phrases()[4]["es"], "es")
    _approve(ctx, event_id, qid)

    done = feed_jobs.translate(ctx, engine, ctx.publisher.client, event_id, ["ru", "de", "zh", "es"], None)
    assert done == {"translated": 2, "languages": ["ru", "de", "zh", "es"]}
    got = translations(ctx, qid)
    assert {lang: t.text for lang, t in got.items()} == {"ru": row["ru"], "de": row["de"]}
    assert {t.engine for t in got.values()} == {"argos"}
    assert translations(ctx, pending) == {}  # not on the feed: not translated for it
    (ru,) = stream(ctx, event_id, channels.feed_texts("ru"), "feed.text")
    assert ru == {"id": qid, "language": "ru", "text": row["ru"], "machine": True}
    assert [p["text"] for p in stream(ctx, event_id, channels.feed_texts("de"), "feed.text")] == [row["de"]]
    assert stream(ctx, event_id, channels.feed_texts("zh"), "feed.text") == []  # no model: the original shows
    assert feed.snapshot(ctx, event_id, "de")["texts"][str(qid)]["text"] == row["de"]

    # Cached: asked again (another question entered, a new reader came), nothing is redone.
    again = feed_jobs.translate(ctx, engine, ctx.publisher.client, event_id, ["ru", "de"], [qid])
    assert again["translated"] == 0
    assert len(stream(ctx, event_id, channels.feed_texts("ru"), "feed.text")) == 1


def test_a_moderators_translation_is_kept_and_a_hidden_question_is_left_alone(ctx, event_id, sample, engine) -> None:
    rows = phrases()
    speaker = sample["speakers"]["moscow"][0].id
    fixed = ask(ctx, event_id, speaker, rows[5]["es"], "es")
    hidden = ask(ctx, event_id, speaker, rows[6]["es"], "es")
    questions.edit_translation(ctx, event_id, fixed, "ru", "Исправлено рукой", "mod1", expected_version=None)
    for qid in (fixed, hidden):
        _approve(ctx, event_id, qid)
    questions.set_feed_hidden(ctx, event_id, hidden, True, "mod1", expected_version=None)

    feed_jobs.translate(ctx, engine, ctx.publisher.client, event_id, ["ru", "de"], None)
    assert {lang: t.text for lang, t in translations(ctx, fixed).items()} == {
        "ru": "Исправлено рукой",
        "de": rows[5]["de"],
    }
    assert translations(ctx, hidden) == {}
