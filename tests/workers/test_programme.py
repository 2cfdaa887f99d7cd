"""The programme machine-translated once after the load, with the real test models
(en→ru, en→de; nothing reaches zh), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rq import Queue

from qa_service.bus import channels
from qa_service.bus.redis_bus import Keys, topic
from qa_service.services import snapshots
from qa_service.services.context import Context
from qa_service.services.event_loader import load_event
from workers import programme

pytestmark = pytest.mark.integration

EVENT = """
event:
  slug: mt-programme
  name: "MT programme"
  moderator_language: ru
  viewer_languages: [en, ru, de, zh]
  programme_language: en
  timezone: UTC
studios:
  - slug: cairo
    name: "{studio}"
    city: Cairo
    country: Egypt
    timezone: Africa/Cairo
    host_languages: [ar, en]
    i18n: {{ru: {{city: Каир, country: Египет}}, de: {{city: Kairo, country: Ägypten}}}}
segments:
  - studio: cairo
    title: "Good morning from Lima!"
    start: "10:00"
    end: "11:00"
    i18n: {{ru: {{title: "Утро из Лимы (от редакции)"}}}}
    speakers:
      - {{name: "Omar Hassan", title: "Thank you for the talk!", languages: [ar, en]}}
"""


@pytest.fixture
def engine(argos_dir: Path) -> Any:
    from workers.engine import ArgosEngine

    return ArgosEngine()


def write(tmp_path: Path, studio: str = "Hello from Cairo!") -> Path:
    path = tmp_path / "event.yaml"
    path.write_text(EVENT.format(studio=studio), encoding="utf-8")
    return path


def schedule_length(ctx: Context, event_id: int) -> int:
    return int(ctx.publisher.client.xlen(Keys(ctx.settings.redis_prefix).stream(topic(event_id, channels.SCHEDULE))))


def test_the_programme_is_translated_once_marked_and_announced(ctx, engine, tmp_path) -> None:
    loaded = load_event(ctx, write(tmp_path))
    before = schedule_length(ctx, loaded.event_id)
    out = programme.translate(ctx, loaded.event_id, loaded.programme_language, engine)
    assert out["unreachable"] == ["zh"]  # no model reaches Chinese: viewers read the original
    view = snapshots.schedule(ctx, loaded.event_id)
    studio, segment, speaker = view["studios"][0], view["segments"][0], view["speakers"][0]
    assert studio["i18n"]["city"]["de"] == {"text": "Kairo", "machine": False}
    assert studio["i18n"]["name"] == {
        "ru": {"text": "Привет из Каира!", "machine": True},
        "de": {"text": "Hallo aus Kairo!", "machine": True},
    }
    # The event file's own translation stands; the others are the workers'.
    assert segment["i18n"]["title"] == {
        "ru": {"text": "Утро из Лимы (от редакции)", "machine": False},
        "de": {"text": "Guten Morgen aus Lima!", "machine": True},
    }
    assert speaker["i18n"]["title"]["ru"] == {"text": "Спасибо за выступление!", "machine": True}
    # Announced once on the public schedule channel.
    assert schedule_length(ctx, loaded.event_id) == before + 1

    # Again, nothing changed: nothing translated, nothing announced.
    assert programme.translate(ctx, loaded.event_id, "en", engine)["translated"] == 0
    assert schedule_length(ctx, loaded.event_id) == before + 1

    # The studio renamed in the file: its stale translations go at the load, only it is translated again.
    loaded = load_event(ctx, write(tmp_path, studio="Good evening from Berlin!"))
    assert "name" not in snapshots.schedule(ctx, loaded.event_id)["studios"][0]["i18n"]
    out = programme.translate(ctx, loaded.event_id, "en", engine)
    assert (out["translated"], out["records"]) == (2, 1)
    names = snapshots.schedule(ctx, loaded.event_id)["studios"][0]["i18n"]["name"]
    assert names["de"] == {"text": "Guten Abend aus Berlin!", "machine": True}
    # A machine translation never wins over the file's: the title's Russian is still the file's.
    assert snapshots.schedule(ctx, loaded.event_id)["segments"][0]["i18n"]["title"]["ru"]["machine"] is False


def test_the_job_is_queued_by_its_dotted_path(ctx, tmp_path) -> None:
    loaded = load_event(ctx, write(tmp_path))
    queue = Queue(f"{ctx.settings.redis_prefix}-programme-test", connection=ctx.publisher.client)
    job = programme.enqueue(queue, loaded.event_id, loaded.programme_language)
    assert job.func_name == "workers.programme.translate_programme"
    assert job.args == (loaded.event_id, "en")
    assert queue.get_job_ids() == [job.id]
    queue.empty()


class OneBadText:
    """The real engine, except that one text breaks it (too long for the model, say)."""

    def __init__(self, engine: Any, bad: str) -> None:
        self.engine, self.bad, self.pairs = engine, bad, engine.pairs

    def translate_route(self, route: list[str], texts: list[str]) -> list[str]:
        if self.bad in texts:
            raise RuntimeError("No position encodings are defined for positions >= 64")
        return list(self.engine.translate_route(route, texts))


def test_a_text_the_engine_cannot_take_stays_in_the_original_and_costs_no_other(ctx, engine, tmp_path) -> None:
    loaded = load_event(ctx, write(tmp_path))
    out = programme.translate(ctx, loaded.event_id, "en", OneBadText(engine, "Hello from Cairo!"))
    view = snapshots.schedule(ctx, loaded.event_id)
    assert "name" not in view["studios"][0]["i18n"]
    assert view["segments"][0]["i18n"]["title"]["de"]["text"] == "Guten Morgen aus Lima!"
    assert out["records"] == 2  # the segment and the speaker
