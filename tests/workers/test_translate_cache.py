"""The translation cache: the same text on the same route and model is translated once."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from qa_service.db.models import Translation
from qa_service.services import questions
from workers.translate import translate_questions

from .conftest import phrases

pytestmark = pytest.mark.integration


class CountingEngine:
    """The real engine, with a count of the routes it was asked to run."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.calls: list[tuple[list[str], int]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def translate_route(self, route: list[str], texts: list[str]) -> list[str]:
        self.calls.append((route, len(texts)))
        return self.engine.translate_route(route, texts)


def test_second_identical_question_comes_from_the_cache(argos_dir: Path, ctx, event_id, sample) -> None:
    from workers.engine import ArgosEngine

    engine = CountingEngine(ArgosEngine())
    text = phrases()[7]["en"]
    ids = []
    for _ in range(2):
        payload = {
            "client_id": uuid.uuid4().hex,
            "speaker_id": sample["speakers"]["moscow"][1].id,
            "text": text,
            "language": "en",
        }
        ids.append(int(questions.ask(ctx, event_id, "viewer-0001", payload).question["id"]))
    redis_client = ctx.publisher.client
    first = translate_questions(ctx, [ids[0]], engine, lambda event: None, redis_client)
    second = translate_questions(ctx, [ids[1]], engine, lambda event: None, redis_client)
    assert first.done == [ids[0]] and second.done == [ids[1]]
    assert engine.calls == [(["en", "ru"], 1)]  # the second one never reached CTranslate2
    with ctx.transaction() as (db, _):
        rows = db.exec(select(Translation).where(Translation.language == "ru")).all()
    assert {r.text for r in rows} == {phrases()[7]["ru"]} and len(rows) == 2
    assert redis_client.keys(f"{ctx.settings.redis_prefix}:tcache:*")
