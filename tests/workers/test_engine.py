"""The engine on the small real Argos models: exact phrases, pivots, batching, no network."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from .conftest import phrases

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(argos_dir: Path) -> Any:
    from workers.engine import ArgosEngine

    e = ArgosEngine()
    e.preload("all")
    return e


def test_installed_pairs_are_the_test_models(engine: Any) -> None:
    assert engine.pairs == {("en", "ru"), ("ru", "en"), ("es", "en"), ("en", "de")}
    assert engine.is_test_model()
    assert engine.version("en", "ru").startswith("en-ru@0.2-test#")


@pytest.mark.parametrize(("src", "dst"), [("en", "ru"), ("ru", "en"), ("es", "en"), ("en", "de")])
def test_direct_pairs_translate_their_phrases_exactly(engine: Any, src: str, dst: str) -> None:
    rows = phrases()
    assert engine.translate_pair(src, dst, [r[src] for r in rows]) == [r[dst] for r in rows]


def test_pivot_through_english(engine: Any) -> None:
    from workers.planner import path

    rows = phrases()[:10]
    route = path("es", "ru", engine.pairs)
    assert route == ["es", "en", "ru"]
    assert engine.translate_route(route, [r["es"] for r in rows]) == [r["ru"] for r in rows]
    assert engine.route_version(route).count("@") == 2


def test_batched_equals_one_by_one(engine: Any) -> None:
    texts = [r["en"] for r in phrases()]
    batched = engine.translate_pair("en", "de", texts)
    single = [engine.translate_pair("en", "de", [t])[0] for t in texts]
    assert batched == single


def test_multi_sentence_and_multi_paragraph_questions(engine: Any) -> None:
    rows = phrases()
    text = f"{rows[12]['en']} {rows[1]['en']}\n{rows[3]['en']}"
    out = engine.translate_pair("en", "ru", [text])[0]
    for i in (12, 1, 3):
        assert rows[i]["ru"] in out


def test_translating_never_touches_the_network(argos_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh engine loads its models and translates with every socket refused."""
    from workers.engine import ArgosEngine

    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    fresh = ArgosEngine()
    rows = phrases()[:5]
    assert fresh.translate_route(["es", "en", "ru"], [r["es"] for r in rows]) == [r["ru"] for r in rows]
    assert attempts == []
