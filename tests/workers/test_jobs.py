"""How a translation attempt classifies failures (in-process, real engine, Redis and SQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qa_service.bus import channels
from qa_service.bus.redis_bus import Keys, topic
from qa_service.services import snapshots
from qa_service.services.context import Context
from workers.inflight import Attempts, Leases, Retries
from workers.jobs import attempt, classify
from workers.runtime import Runtime

from .conftest import ask, phrases, question, translations

pytestmark = pytest.mark.integration


class PoisonedEngine:
    """The real engine, except that one text makes it crash (as a broken model would)."""

    def __init__(self, engine: Any, poison: str) -> None:
        self.engine = engine
        self.poison = poison

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def translate_route(self, route: list[str], texts: list[str]) -> list[str]:
        if self.poison in texts:
            raise RuntimeError("engine crashed")
        return self.engine.translate_route(route, texts)


@pytest.fixture
def runtime_for(argos_dir: Path, ctx: Context) -> Any:
    from workers.engine import ArgosEngine

    engine = ArgosEngine()

    def make(poison: str = "") -> Runtime:
        client, prefix = ctx.publisher.client, ctx.settings.redis_prefix
        leases = Leases(client, prefix, "test:1:x", ttl=10, max_hold=60)
        return Runtime(
            ctx.settings,
            client,
            ctx,
            PoisonedEngine(engine, poison),
            "test:1:x",
            leases,
            Attempts(client, prefix),
            Retries(client, prefix),
        )

    return make


def moderation_length(ctx: Context, event_id: int) -> int:
    return int(ctx.publisher.client.xlen(Keys(ctx.settings.redis_prefix).stream(topic(event_id, channels.MODERATION))))


def test_a_crashing_question_is_split_from_its_batch_then_given_up_after_its_attempts(
    runtime_for, ctx, event_id, sample
) -> None:
    good_row, bad_row = phrases()[0], phrases()[1]
    speaker = sample["speakers"]["moscow"][1].id
    good = ask(ctx, event_id, speaker, good_row["en"], "en")
    bad = ask(ctx, event_id, speaker, bad_row["en"], "en")
    rt = runtime_for(poison=bad_row["en"])
    assert attempt(rt, [good, bad])["failed"] == [good, bad]
    # Whose fault is not known: neither is charged, each is tried again alone.
    assert rt.retries.waiting() == {good, bad}
    assert rt.attempts.begin([good])[good][0] == 1  # the batch attempt was not charged
    rt.attempts.refund([good])
    assert attempt(rt, [good])["translated"] == [good]
    assert translations(ctx, good)["ru"].text == good_row["ru"]
    for _ in range(3):
        assert attempt(rt, [bad])["failed"] == [bad]
        assert question(ctx, bad).translation_state == "pending"
        assert not ctx.publisher.client.exists(rt.attempts.keys.attempts(good))
    before = moderation_length(ctx, event_id)
    attempt(rt, [bad])  # the fourth
    q = question(ctx, bad)
    # A code is stored, not the engine's words (those went to the worker's log).
    assert (q.translation_state, q.translation_error) == ("untranslated", "engine_failed")
    assert moderation_length(ctx, event_id) == before + 1
    view = next(v for v in snapshots.moderator(ctx, event_id)["questions"] if v["id"] == bad)
    assert view["translation_problem"] == {"code": "engine_failed", "pairs": [], "command": None}
    assert "RuntimeError" not in view["translation_error"] and "crashed" not in view["translation_error"]
    # A re-translate starts afresh.
    assert not ctx.publisher.client.exists(rt.attempts.keys.attempts(bad))


def test_an_attempt_that_changes_nothing_announces_nothing(runtime_for, ctx, event_id, sample) -> None:
    row = phrases()[3]
    speaker = sample["speakers"]["moscow"][1].id
    qid = ask(ctx, event_id, speaker, row["en"], "en")
    nomodel = ask(ctx, event_id, speaker, "新工厂需要多长时间建成？", "zh")
    rt = runtime_for()
    attempt(rt, [qid, nomodel])
    assert question(ctx, nomodel).translation_state == "untranslated"
    assert question(ctx, nomodel).translation_error == "no_model:zh>ru;zh"
    view = next(v for v in snapshots.moderator(ctx, event_id)["questions"] if v["id"] == nomodel)
    assert view["translation_problem"] == {
        "code": "no_model",
        "pairs": [["zh", "ru"]],
        "command": "qa-service models install zh",
    }
    assert view["translation_error"] == (
        "No language pack translates Chinese to Russian. "
        "Install one with: qa-service models install zh — or write the translation by hand."
    )
    before = moderation_length(ctx, event_id)
    again = attempt(rt, [qid, nomodel])  # a duplicate job, a sweep racing a worker, …
    assert again["translated"] == [] and list(again["untranslated"]) == [nomodel]
    assert moderation_length(ctx, event_id) == before


def test_a_text_too_long_for_the_model_ends_too_long_at_once_without_engine_words(
    runtime_for, ctx, event_id, sample, caplog
) -> None:
    speaker = sample["speakers"]["moscow"][1].id
    good = ask(ctx, event_id, speaker, phrases()[0]["en"], "en")
    # The test models have 64 positions; real ones have more, and longer texts.
    text = "Why is the new factory" + " and the new plant" * 20 + " so far from the river?"  # one sentence
    long = ask(ctx, event_id, speaker, text, "en")
    rt = runtime_for()
    assert attempt(rt, [good, long])["failed"] == [good, long]  # whose fault: each alone again
    rt.attempts.refund([good])
    assert attempt(rt, [good])["translated"] == [good]
    with caplog.at_level("WARNING", logger="workers.jobs"):
        assert attempt(rt, [long]) == {"failed": [long], "error": "too_long"}
    q = question(ctx, long)
    assert (q.translation_state, q.translation_error) == ("untranslated", "too_long")  # at once: it is final
    assert not ctx.publisher.client.exists(rt.attempts.keys.attempts(long))
    assert "position encodings" in caplog.text  # the engine's words: in the log
    view = next(v for v in snapshots.moderator(ctx, event_id)["questions"] if v["id"] == long)
    assert view["translation_problem"] == {"code": "too_long", "pairs": [], "command": None}
    assert view["translation_error"] == "Too long for the translation model. Write the translation by hand."
    assert "encodings" not in str(view) and "64" not in view["translation_error"]


def test_engine_failures_are_classified() -> None:
    long = RuntimeError("No position encodings are defined for positions >= 64, but got position 500")
    assert classify(long) == "too_long"
    assert classify(RuntimeError("engine crashed")) == "engine_failed"
    assert classify(ValueError("bad token")) == "engine_failed"
