"""Similar questions found by the translation worker (in-process attempts, the real
test models, real Redis, SQLite and PostgreSQL): qa_service/services/similar.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qa_service.bus import channels
from qa_service.bus.redis_bus import Keys, topic
from qa_service.services import questions, schedule, snapshots
from qa_service.services.context import Context
from workers.inflight import Attempts, Leases, Retries
from workers.jobs import attempt
from workers.runtime import Runtime

from .conftest import ask, phrases, question

pytestmark = pytest.mark.integration


@pytest.fixture
def rt(argos_dir: Path, ctx: Context) -> Runtime:
    from workers.engine import ArgosEngine

    client, prefix = ctx.publisher.client, ctx.settings.redis_prefix
    leases = Leases(client, prefix, "test:1:s", ttl=10, max_hold=60)
    return Runtime(
        ctx.settings, client, ctx, ArgosEngine(), "test:1:s", leases, Attempts(client, prefix), Retries(client, prefix)
    )


def moderation_events(ctx: Context, event_id: int, qid: int) -> list[dict[str, Any]]:
    stream = Keys(ctx.settings.redis_prefix).stream(topic(event_id, channels.MODERATION))
    events = [json.loads(fields[b"d"]) for _id, fields in ctx.publisher.client.xrange(stream)]
    return [e for e in events if e["type"] == "question.updated" and e["payload"]["id"] == qid]


def row(en: str) -> dict[str, str]:
    return next(r for r in phrases() if r["en"] == en)


EUROPE, ASIA = row("Do you export to Europe?"), row("Do you export to Asia?")


def test_a_spanish_and_a_russian_question_about_one_thing_are_grouped(rt, ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][1].id  # reads Russian, as do the moderators and the Moscow host
    es = ask(ctx, event_id, speaker, EUROPE["es"], "es")
    attempt(rt, [es])  # es→en→ru
    asia = ask(ctx, event_id, speaker, ASIA["ru"], "ru")
    ru = ask(ctx, event_id, speaker, "Экспортируете ли вы в Европу?", "ru")  # a paraphrase, in Russian
    attempt(rt, [asia, ru])
    # The Russian ones need no translation at all, and are compared all the same.
    assert question(ctx, ru).translation_state == "done" and question(ctx, asia).translation_state == "done"
    assert question(ctx, ru).similar_ids == [es]
    assert question(ctx, asia).similar_ids is None  # "…to Asia?" is another question
    assert question(ctx, es).similar_ids is None  # only earlier questions are suggested
    # The event that says "translated" carries the suggestion; so does the snapshot.
    assert moderation_events(ctx, event_id, ru)[-1]["payload"]["similar_to"] == [es]
    view = next(v for v in snapshots.moderator(ctx, event_id)["questions"] if v["id"] == ru)
    assert view["similar_to"] == [es]
    # One merge, as the console's key does it: the Russian asker follows the Spanish question.
    questions.moderate(ctx, event_id, ru, "merge", "mod1", expected_version=1, merged_into=es)
    questions.moderate(ctx, event_id, es, "approve", "mod1", expected_version=1)
    assert question(ctx, ru).status == "merged" and question(ctx, es).status == "queued"


def test_an_earlier_question_of_the_same_batch_counts_and_the_best_three_come_first(rt, ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][1].id
    texts = [
        ("es", "¿Exportan ustedes a Europa?"),
        ("ru", "Вы экспортируете в Европу сейчас?"),
        ("en", "Do you export to Europe?"),
        ("es", EUROPE["es"]),
        ("ru", EUROPE["ru"]),
    ]
    ids = [ask(ctx, event_id, speaker, text, lang) for lang, text in texts]
    attempt(rt, ids)  # one batch: each sees the ones before it, translated in this same transaction
    last = question(ctx, ids[-1]).similar_ids
    assert last is not None and len(last) == 3
    assert set(last) <= set(ids[:-1]) and last[0] in (ids[0], ids[2], ids[3])  # exact matches before "…сейчас?"
    assert question(ctx, ids[1]).similar_ids == [ids[0]]


def test_only_open_questions_of_the_same_studio_are_candidates(rt, ctx, event_id, sample) -> None:
    moscow = sample["speakers"]["moscow"][1].id
    berlin_segment = sample["segments"][sample["studios"]["berlin"].id]
    schedule.set_status(ctx, event_id, berlin_segment.id, "live", "mod1")
    berlin = sample["speakers"]["berlin"][1].id
    other_studio = ask(ctx, event_id, berlin, EUROPE["en"], "en")
    rejected = ask(ctx, event_id, moscow, EUROPE["es"], "es")
    answered = ask(ctx, event_id, moscow, EUROPE["en"], "en")
    kept = ask(ctx, event_id, moscow, EUROPE["ru"], "ru")
    attempt(rt, [other_studio, rejected, answered, kept])
    assert question(ctx, kept).similar_ids == [rejected, answered]
    questions.moderate(ctx, event_id, rejected, "reject", "mod1", expected_version=1, reason="off_topic")
    questions.moderate(ctx, event_id, answered, "approve", "mod1", expected_version=1)
    questions.moderate(ctx, event_id, answered, "on_air", "mod1", expected_version=None)
    questions.moderate(ctx, event_id, answered, "answer", "mod1", expected_version=None)
    new = ask(ctx, event_id, moscow, "Вы экспортируете в Европу?", "ru")
    attempt(rt, [new])
    assert question(ctx, new).similar_ids == [kept]  # not the rejected, the answered, nor Berlin's


def test_a_retranslation_finds_them_again_and_says_so_only_on_a_change(rt, ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][1].id
    first = ask(ctx, event_id, speaker, EUROPE["ru"], "ru")
    second = ask(ctx, event_id, speaker, EUROPE["es"], "es")
    attempt(rt, [first, second])
    assert question(ctx, second).similar_ids == [first]
    questions.moderate(ctx, event_id, first, "reject", "mod1", expected_version=1, reason="off_topic")
    before = len(moderation_events(ctx, event_id, second))
    questions.retranslate(ctx, event_id, second, "mod1", expected_version=1)
    attempt(rt, [second])
    assert question(ctx, second).similar_ids is None  # its only match is closed now
    events = moderation_events(ctx, event_id, second)
    assert events[-1]["payload"]["similar_to"] == [] and len(events) == before + 2  # retranslate, then done
