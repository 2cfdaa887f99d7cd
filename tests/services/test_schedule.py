"""The schedule: YAML loading, the clock, hand overrides."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlmodel import select

from qa_service.db.models import Segment, Speaker, Studio
from qa_service.services import schedule
from qa_service.services.event_loader import SAMPLE, ScheduleError, load, parse

pytestmark = pytest.mark.integration
DAY = date(2030, 1, 7)  # a day far from the real clock, so loading sets nothing live


def test_sample_is_a_realistic_marathon() -> None:
    data = parse(SAMPLE.read_text(), today=DAY)
    countries = {s["country"] for s in data["studios"]}
    assert countries == {
        "Russia",
        "Indonesia",
        "China",
        "Uzbekistan",
        "Egypt",
        "Germany",
        "France",
        "Peru",
        "Argentina",
    }
    assert data["event"]["moderator_language"] == "ru"
    langs = {sp["name"]: sp["languages"] for seg in data["segments"] for sp in seg["speakers"]}
    assert langs["Dilshod Karimov"] == ["uz", "ru"]
    assert langs["Omar Hassan"] == ["ar", "en"]
    assert langs["Lucía Quispe"] == ["es"]
    # Moscow time, stored as UTC: the opening at 08:00 MSK is 05:00 UTC.
    assert data["segments"][0]["start"] == datetime(2030, 1, 7, 5, 0)
    starts = [s["start"] for s in data["segments"]]
    assert starts == sorted(starts) and starts[-1] - starts[0] >= timedelta(hours=8)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("[]", "YAML mapping"),
        (
            "event: {slug: x, name: y, moderator_language: ru, viewer_languages: [ru]}\nstudios: []\nsegments: [{studio: nowhere}]",
            "studio",
        ),
        (
            "event: {slug: x, name: y, moderator_language: ru, viewer_languages: [russian]}\nstudios: []\nsegments: []",
            "languages",
        ),
        (
            "event: {slug: x, name: y, moderator_language: ru, viewer_languages: [ru], timezone: Mars/Olympus}\nstudios: []\nsegments: []",
            "time zone",
        ),
    ],
)
def test_bad_schedules_are_refused_with_a_reason(yaml_text: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse(yaml_text, today=DAY)


def test_loading_twice_updates_in_place(ctx) -> None:
    first = load(ctx, SAMPLE, today=DAY)
    second = load(ctx, SAMPLE, today=DAY + timedelta(days=1))
    assert first == second
    with ctx.transaction() as (db, _):
        assert len(db.exec(select(Studio)).all()) == 9
        assert len(db.exec(select(Segment)).all()) == 9
        assert len(db.exec(select(Speaker)).all()) == 18
        assert min(s.starts_at for s in db.exec(select(Segment))).date() == DAY + timedelta(days=1)


def test_clock_moves_segments_and_leaves_hand_set_ones(ctx) -> None:
    event_id = load(ctx, SAMPLE, today=DAY)
    opening = datetime(2030, 1, 7, 5, 30)  # 08:30 in Moscow
    changed = schedule.tick(ctx, event_id, opening)
    with ctx.transaction() as (db, _):
        segs = {s.id: s for s in db.exec(select(Segment))}
    assert [segs[i].status for i in changed] == ["live"]
    live = [s for s in segs.values() if s.status == "live"]
    assert len(live) == 1 and live[0].title.startswith("Opening")
    assert schedule.tick(ctx, event_id, opening) == []  # nothing more to do: idempotent

    lima = next(s for s in segs.values() if "Copper" in s.title)
    schedule.set_status(ctx, event_id, lima.id, "live", "mod1")
    later = datetime(2030, 1, 7, 7, 0)  # Jakarta and Shanghai live, the opening over
    schedule.tick(ctx, event_id, later)
    with ctx.transaction() as (db, _):
        status = {s.title.split(":")[0].split(" ")[0]: s.status for s in db.exec(select(Segment))}
    assert status["Opening"] == "ended" and status["Nickel"] == "live" and status["Robotics"] == "live"
    assert status["Copper"] == "live"  # by hand, though the clock says upcoming
    schedule.set_status(ctx, event_id, lima.id, "auto", "mod1")
    schedule.tick(ctx, event_id, later)
    with ctx.transaction() as (db, _):
        assert db.get(Segment, lima.id).status == "upcoming"


def test_clock_from_many_hubs_publishes_each_change_once(ctx, redis_url) -> None:
    import concurrent.futures

    event_id = load(ctx, SAMPLE, today=DAY)
    now = datetime(2030, 1, 7, 7, 0)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: schedule.tick(ctx, event_id, now), range(4)))
    changed = [i for r in results for i in r]
    assert len(changed) == len(set(changed)) == 3  # opening ended, Jakarta and Shanghai live
    from qa_service.bus.redis_bus import topic

    stream = ctx.publisher.keys.stream(topic(event_id, "schedule"))
    assert ctx.publisher.client.xlen(stream) == 3
