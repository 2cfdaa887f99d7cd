"""Live editing of the programme (services/event_admin.py), the event file's export and
a reload over a running event (services/event_loader.py): each change validated, audited,
and announced once, after the commit, on the schedule channel with a growing version."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import select

from qa_service.bus import channels
from qa_service.db.engine import make_engine, upgrade
from qa_service.db.models import ModerationAction, Segment, Speaker, Studio
from qa_service.domain.errors import DomainError
from qa_service.services import event_admin, schedule, snapshots
from qa_service.services.context import Context
from qa_service.services.event_loader import LOAD_ACTOR, SAMPLE, export, load, load_event, parse

from .support import ask, stream

pytestmark = pytest.mark.integration
DAY = date(2030, 1, 7)  # far from the real clock
ADMIN = "admin1"


def announcements(ctx: Context, event_id: int) -> list[dict[str, Any]]:
    return stream(ctx, event_id, channels.SCHEDULE, "schedule.updated")


def audit(ctx: Context, event_id: int) -> list[ModerationAction]:
    with ctx.read() as db:
        return list(
            db.exec(
                select(ModerationAction)
                .where(ModerationAction.event_id == event_id, ModerationAction.action.startswith("event."))  # type: ignore[union-attr]
                .order_by(ModerationAction.id)  # type: ignore[arg-type]
            )
        )


def live_segment(sample: dict[str, Any]) -> Segment:
    return sample["segments"][sample["studios"]["moscow"].id]


# ── each change: done, audited, announced once with the whole programme ─────
def test_adding_a_speaker_to_the_live_segment_is_audited_and_announced(ctx, event_id, sample) -> None:
    seg = live_segment(sample)
    sp = event_admin.create_speaker(
        ctx,
        event_id,
        {"segment_id": seg.id, "name": "Mei Ling", "title": "Analyst", "languages": ["zh", "en"]},
        ADMIN,
    )
    assert sp["segment_id"] == seg.id and sp["languages"] == ["zh", "en"]  # the order of preference kept
    (row,) = audit(ctx, event_id)
    assert (row.actor, row.action, row.before, row.segment_id) == (ADMIN, "event.speaker_add", None, seg.id)
    assert row.after is not None and row.after["name"] == "Mei Ling"
    (event,) = announcements(ctx, event_id)
    assert event["version"] == row.id
    assert [s["name"] for s in event["speakers"] if s["segment_id"] == seg.id][-1] == "Mei Ling"
    assert {"event", "studios", "segments", "speakers"} <= set(event)
    # Every snapshot after it holds the same programme, at the same version.
    assert snapshots.schedule(ctx, event_id) == event


def test_studio_segment_speaker_life_cycle(ctx, event_id) -> None:
    studio = event_admin.create_studio(
        ctx,
        event_id,
        {
            "slug": "nairobi",
            "name": "Nairobi studio",
            "city": "Nairobi",
            "country": "Kenya",
            "timezone": "Africa/Nairobi",
            "host_languages": ["sw", "en"],
            "streams": {"en": "https://cdn.example.org/nairobi/en.m3u8"},
        },
        ADMIN,
    )
    # Times in the studio's time zone (Nairobi is UTC+3), or with an offset.
    seg = event_admin.create_segment(
        ctx,
        event_id,
        {
            "studio_id": studio["id"],
            "title": "Geothermal power",
            "starts_at": "2030-01-07T09:00",
            "ends_at": "2030-01-07T10:00Z",
        },
        ADMIN,
    )
    assert (seg["starts_at"], seg["ends_at"], seg["status"]) == (
        "2030-01-07T06:00:00Z",
        "2030-01-07T10:00:00Z",
        "upcoming",
    )
    sp = event_admin.create_speaker(
        ctx, event_id, {"segment_id": seg["id"], "name": "Wanjiru Kamau", "languages": ["sw", "en"]}, ADMIN
    )
    seg2 = event_admin.update_segment(
        ctx,
        event_id,
        seg["id"],
        {"title": "Geothermal power in the Rift", "ends_at": "2030-01-07T14:00", "version": 1},
        ADMIN,
    )
    assert (seg2["title"], seg2["ends_at"], seg2["version"]) == (
        "Geothermal power in the Rift",
        "2030-01-07T11:00:00Z",
        2,
    )
    sp2 = event_admin.update_speaker(
        ctx,
        event_id,
        sp["id"],
        {"title": "Chief Geologist", "organisation": "KenGen", "languages": ["en", "sw"]},
        ADMIN,
    )
    assert (sp2["title"], sp2["organisation"], sp2["languages"]) == ("Chief Geologist", "KenGen", ["en", "sw"])
    st2 = event_admin.update_studio(ctx, event_id, studio["id"], {"name": "Nairobi hub"}, ADMIN)
    assert st2["name"] == "Nairobi hub" and st2["streams"] == [
        {"language": "en", "hls": "https://cdn.example.org/nairobi/en.m3u8"}
    ]
    # A change that changes nothing is no change: no audit row, no event.
    event_admin.update_studio(ctx, event_id, studio["id"], {"name": "Nairobi hub"}, ADMIN)
    assert event_admin.delete_speaker(ctx, event_id, sp["id"], ADMIN) == {"deleted": sp["id"]}
    assert event_admin.delete_segment(ctx, event_id, seg["id"], ADMIN) == {"deleted": seg["id"]}
    assert event_admin.delete_studio(ctx, event_id, studio["id"], ADMIN) == {"deleted": studio["id"]}
    actions = [r.action for r in audit(ctx, event_id)]
    assert actions == [
        "event.studio_add",
        "event.segment_add",
        "event.speaker_add",
        "event.segment_update",
        "event.speaker_update",
        "event.studio_update",
        "event.speaker_delete",
        "event.segment_delete",
        "event.studio_delete",
    ]
    events = announcements(ctx, event_id)
    assert len(events) == len(actions)  # one event per change
    versions = [e["version"] for e in events]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert "nairobi" not in {s["slug"] for s in events[-1]["studios"]}
    with ctx.read() as db:
        assert db.exec(select(Studio).where(Studio.slug == "nairobi")).first() is None


def test_moving_a_speaker_between_segments(ctx, event_id, sample) -> None:
    jakarta = sample["segments"][sample["studios"]["jakarta"].id]
    budi = sample["speakers"]["jakarta"][1]
    moved = event_admin.update_speaker(ctx, event_id, budi.id, {"segment_id": live_segment(sample).id}, ADMIN)
    assert moved["segment_id"] == live_segment(sample).id != jakarta.id
    (row,) = audit(ctx, event_id)
    assert row.before is not None and row.after is not None
    assert (row.before["segment_id"], row.after["segment_id"]) == (jakarta.id, live_segment(sample).id)


def test_a_changed_title_drops_its_old_translations(ctx, event_id, sample) -> None:
    anna = sample["speakers"]["moscow"][0]  # the file translates her title into ru, zh, ar
    assert anna.i18n["title"]
    after = event_admin.update_speaker(ctx, event_id, anna.id, {"title": "Moderator"}, ADMIN)
    assert "title" not in after["i18n"]
    untouched = event_admin.update_speaker(ctx, event_id, anna.id, {"organisation": "Studio M"}, ADMIN)
    assert "title" not in untouched["i18n"]


# ── refused: nothing changes, nothing is announced ───────────────────────────
@pytest.mark.parametrize(
    ("call", "code"),
    [
        (
            lambda c, e, s: event_admin.create_speaker(
                c, e, {"segment_id": s, "name": "X", "languages": ["english"]}, ADMIN
            ),
            "speaker.invalid",
        ),
        (
            lambda c, e, s: event_admin.create_speaker(
                c, e, {"segment_id": s, "name": " \u200b ", "languages": ["en"]}, ADMIN
            ),
            "speaker.invalid",
        ),
        (
            lambda c, e, s: event_admin.create_speaker(c, e, {"segment_id": s, "name": "X", "languages": []}, ADMIN),
            "speaker.invalid",
        ),
        (
            lambda c, e, s: event_admin.create_speaker(
                c, e, {"segment_id": s, "name": "X", "languages": ["en"], "email": "x"}, ADMIN
            ),
            "speaker.invalid",
        ),
        (
            lambda c, e, s: event_admin.create_speaker(
                c, e, {"segment_id": 999999, "name": "X", "languages": ["en"]}, ADMIN
            ),
            "segment.unknown",
        ),
        (
            lambda c, e, s: event_admin.create_speaker(
                c, e, {"segment_id": s, "name": "Anna Sokolova", "languages": ["en"]}, ADMIN
            ),
            "speaker.name_taken",
        ),
        (
            lambda c, e, s: event_admin.update_segment(c, e, s, {"ends_at": "2000-01-01T00:00"}, ADMIN),
            "segment.invalid",
        ),
        (lambda c, e, s: event_admin.update_segment(c, e, s, {"starts_at": "tomorrow"}, ADMIN), "segment.invalid"),
        (
            lambda c, e, s: event_admin.update_segment(c, e, s, {"title": "x", "version": 99}, ADMIN),
            "segment.stale_version",
        ),
        (
            lambda c, e, s: event_admin.update_segment(
                c, e, s, {"streams": {"en": "ftp://cdn.example.org/a.m3u8"}}, ADMIN
            ),
            "segment.invalid",
        ),
        (lambda c, e, s: event_admin.update_segment(c, e, s, {"title": "Robotics on the factory floor"}, ADMIN), None),
        (
            lambda c, e, s: event_admin.create_studio(
                c,
                e,
                {
                    "slug": "moscow",
                    "name": "M",
                    "city": "M",
                    "country": "R",
                    "timezone": "Europe/Moscow",
                    "host_languages": ["ru"],
                },
                ADMIN,
            ),
            "studio.slug_taken",
        ),
        (
            lambda c, e, s: event_admin.create_studio(
                c,
                e,
                {
                    "slug": "mars",
                    "name": "M",
                    "city": "M",
                    "country": "R",
                    "timezone": "Mars/Olympus",
                    "host_languages": ["ru"],
                },
                ADMIN,
            ),
            "studio.invalid",
        ),
        (
            lambda c, e, s: event_admin.create_studio(
                c,
                e,
                {"slug": "a b", "name": "M", "city": "M", "country": "R", "timezone": "UTC", "host_languages": ["ru"]},
                ADMIN,
            ),
            "studio.invalid",
        ),
    ],
)
def test_invalid_changes_are_refused_and_nothing_is_announced(ctx, event_id, sample, call, code) -> None:
    seg = live_segment(sample)
    if code is None:  # another studio's title: allowed (titles are unique per studio)
        call(ctx, event_id, seg.id)
        return
    with pytest.raises(DomainError) as err:
        call(ctx, event_id, seg.id)
    assert err.value.code == code
    assert audit(ctx, event_id) == [] and announcements(ctx, event_id) == []


def test_what_has_questions_is_not_deleted(ctx, event_id, sample) -> None:
    dmitry = sample["speakers"]["moscow"][1]
    ask(ctx, event_id, dmitry.id)
    seg, studio = live_segment(sample), sample["studios"]["moscow"]
    for call, code in [
        (lambda: event_admin.delete_speaker(ctx, event_id, dmitry.id, ADMIN), "speaker.has_questions"),
        (lambda: event_admin.delete_segment(ctx, event_id, seg.id, ADMIN), "segment.has_questions"),
        (lambda: event_admin.delete_studio(ctx, event_id, studio.id, ADMIN), "studio.has_questions"),
        (
            lambda: event_admin.update_speaker(
                ctx, event_id, dmitry.id, {"segment_id": sample["segments"][sample["studios"]["cairo"].id].id}, ADMIN
            ),
            "speaker.has_questions",
        ),
        (
            lambda: event_admin.update_segment(
                ctx, event_id, seg.id, {"studio_id": sample["studios"]["cairo"].id}, ADMIN
            ),
            "segment.has_questions",
        ),
    ]:
        with pytest.raises(DomainError) as err:
            call()
        assert (err.value.code, err.value.status, err.value.details["questions"]) == (code, 409, 1)
    assert announcements(ctx, event_id) == []
    # Deleting an empty segment with speakers, and a segment a moderator set live by hand.
    cairo = sample["segments"][sample["studios"]["cairo"].id]
    schedule.set_status(ctx, event_id, cairo.id, "live", "mod1")
    event_admin.delete_segment(ctx, event_id, cairo.id, ADMIN)
    with ctx.read() as db:
        assert db.get(Segment, cairo.id) is None
        assert db.exec(select(Speaker).where(Speaker.segment_id == cairo.id)).all() == []
        # The moderator's audit row stays; the segment it named lives on in before/after.
        live_row = db.exec(select(ModerationAction).where(ModerationAction.action == "segment.live")).one()
        assert live_row.segment_id is None and live_row.after and live_row.after["id"] == cairo.id
    deleted = audit(ctx, event_id)[-1]
    assert deleted.action == "event.segment_delete" and deleted.before is not None
    assert [s["name"] for s in deleted.before["speakers"]] == ["Omar Hassan", "Nour El-Sayed"]


def test_a_segment_update_and_a_status_change_keep_one_version_order(ctx, event_id, sample) -> None:
    seg = live_segment(sample)
    after_edit = event_admin.update_segment(ctx, event_id, seg.id, {"title": "Opening, live"}, ADMIN)
    after_end = schedule.set_status(ctx, event_id, seg.id, "ended", "mod1")
    assert after_end["version"] > after_edit["version"] > seg.version
    assert after_end["title"] == "Opening, live"


def test_no_event_when_the_commit_fails(ctx, event_id, sample, monkeypatch) -> None:
    seg = live_segment(sample)

    def broken(self: Any, outbox: Any) -> None:
        raise RuntimeError("the database went away at commit")

    monkeypatch.setattr(event_admin.Editing, "announce", broken)
    with pytest.raises(RuntimeError):
        event_admin.create_speaker(ctx, event_id, {"segment_id": seg.id, "name": "Ghost", "languages": ["en"]}, ADMIN)
    assert announcements(ctx, event_id) == [] and audit(ctx, event_id) == []
    with ctx.read() as db:
        assert db.exec(select(Speaker).where(Speaker.name == "Ghost")).first() is None


# ── the event file: export, round trip, reload over a running event ─────────
def test_export_load_export_round_trips(ctx, tmp_path: Path) -> None:
    event_id = load(ctx, SAMPLE, today=DAY)
    first = export(ctx, None)
    data = parse(first, today=date(2031, 5, 5))  # the exported file names its own date
    assert data["segments"][0]["start"] == datetime(2030, 1, 7, 5, 0)  # 08:00 in Moscow
    assert "Moscow" in first and "date: '2030-01-07'" in first and "timezone: Europe/Moscow" in first
    file = tmp_path / "event.yaml"
    file.write_text(first, encoding="utf-8")
    # Loaded again on an empty database, then exported: the same file.
    empty_url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    upgrade(empty_url)
    empty = Context(ctx.settings, make_engine(empty_url), ctx.publisher)
    try:
        load(empty, file, today=date(2031, 5, 5))
        assert export(empty, None) == first
    finally:
        empty.engine.dispose()
    # A segment past midnight keeps its own date, and the file still loads the same.
    seg_id = snapshots.schedule(ctx, event_id)["segments"][-1]["id"]
    event_admin.update_segment(
        ctx, event_id, seg_id, {"starts_at": "2030-01-07T23:30+03:00", "ends_at": "2030-01-08T00:45+03:00"}, ADMIN
    )
    moved = export(ctx, None)
    last = yaml.safe_load(moved)["segments"][-1]
    assert (last["start"], last["end"]) == ("23:30", "2030-01-08 00:45")
    file.write_text(moved, encoding="utf-8")
    load(ctx, file)
    assert export(ctx, None) == moved


def test_reloading_changes_only_what_differs(ctx, tmp_path: Path) -> None:
    event_id = load(ctx, SAMPLE, today=DAY)
    assert audit(ctx, event_id) == [] and announcements(ctx, event_id) == []  # creation is not a change
    load(ctx, SAMPLE, today=DAY)
    assert audit(ctx, event_id) == [] and announcements(ctx, event_id) == []  # nothing differs: nothing said
    text = SAMPLE.read_text(encoding="utf-8")
    text = text.replace(
        'title: "Robotics on the factory floor"\n    start: "09:00"',
        'title: "Robotics on the factory floor"\n    start: "09:15"',
    )
    text = text.replace('{name: "Jonas Vogel", title: "Founder"', '{name: "Jonas Vogel", title: "Co-founder"')
    text = text.replace(
        '      - {name: "Zhang Min"',
        '      - {name: "Wang Fang", title: "Economist", languages: [zh]}\n      - {name: "Zhang Min"',
    )
    file = tmp_path / "changed.yaml"
    file.write_text(text, encoding="utf-8")
    load_event(ctx, file, today=DAY)
    rows = audit(ctx, event_id)
    assert sorted(r.action for r in rows) == ["event.segment_update", "event.speaker_add", "event.speaker_update"]
    assert {r.actor for r in rows} == {LOAD_ACTOR}
    (event,) = announcements(ctx, event_id)
    assert event["version"] == max(r.id for r in rows if r.id)
    robotics = next(s for s in event["segments"] if s["title"] == "Robotics on the factory floor")
    assert robotics["starts_at"] == "2030-01-07T06:15:00Z" and robotics["version"] == 2
    assert "Wang Fang" in {s["name"] for s in event["speakers"]}
    load_event(ctx, file, today=DAY)  # the same file again: nothing
    assert len(announcements(ctx, event_id)) == 1


def test_the_hub_snapshot_after_a_change_is_the_new_programme(settings, ctx, event_id, sample) -> None:
    """The hub caches the programme by the schedule channel's head: the event moves the
    head, so no snapshot after it serves the older programme."""
    from ..support import start_server, wait_until, ws_client

    srv = start_server(settings)
    try:
        with ws_client(srv.ws_base + "/ws/viewer") as before:
            before.request("hello", {})
            wait_until(lambda: (before.pump(0.1), before.snapshots)[1], what="a snapshot")
            old = before.snapshots[-1]["payload"]["schedule"]
            seg = live_segment(sample)
            event_admin.create_speaker(
                ctx, event_id, {"segment_id": seg.id, "name": "Late Addition", "languages": ["en"]}, ADMIN
            )
            ev = before.wait_event(lambda e: e["type"] == "schedule.updated")
            assert ev["channel"] == "schedule" and ev["payload"]["version"] > old["version"]
        with ws_client(srv.ws_base + "/ws/viewer") as after:
            after.request("hello", {})
            wait_until(lambda: (after.pump(0.1), after.snapshots)[1], what="a snapshot")
            fresh = after.snapshots[-1]["payload"]["schedule"]
            assert fresh["version"] == ev["payload"]["version"]
            assert "Late Addition" in {s["name"] for s in fresh["speakers"]}
    finally:
        srv.stop()


def test_the_clock_and_the_admin_share_a_transaction_order(ctx, event_id, sample) -> None:
    """A segment edited into the past ends by the clock's rule at once (not by hand)."""
    seg = live_segment(sample)
    past = (datetime.now(UTC) - timedelta(hours=3)).replace(tzinfo=None)
    view = event_admin.update_segment(
        ctx,
        event_id,
        seg.id,
        {
            "starts_at": past.isoformat(timespec="minutes") + "Z",
            "ends_at": (past + timedelta(hours=1)).isoformat(timespec="minutes") + "Z",
        },
        ADMIN,
    )
    assert view["status"] == "ended" and view["status_manual"] is False
