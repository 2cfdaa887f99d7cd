"""The event file's streams per language and programme translations: parsed strictly,
stored, shown in the public programme, and admitted to the viewer page's CSP."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx
import pytest

from qa_service.services import snapshots, streams
from qa_service.services.event_loader import ScheduleError, load, parse

from ..support import start_server

DAY = date(2030, 1, 7)
BASE = """
event: {{slug: s, name: S, moderator_language: en, viewer_languages: [en, de], timezone: UTC}}
studios:
  - {{slug: a, name: "Studio A", city: C, country: X, timezone: UTC, host_languages: [en]{studio}}}
segments:
  - {{studio: a, title: T, start: "10:00", end: "11:00", speakers: [{{name: P, title: Chief, languages: [en]{speaker}}}]{segment}}}
"""


def doc(studio: str = "", segment: str = "", speaker: str = "") -> str:
    return BASE.format(studio=studio, segment=segment, speaker=speaker)


def test_streams_in_each_form_the_original_first() -> None:
    data = parse(
        doc(
            studio=", streams: {en: 'https://cdn.example.org/a/en.m3u8?x=1', de: {hls: 'https://cdn.example.org/de/live'}}",
            segment=", streams: {original: de, en: {embed: 'https://player.example.com/e/1'}, de: 'http://10.0.0.5:8080/de.m3u8'}",
        ),
        today=DAY,
    )
    assert data["studios"][0]["streams"] == {
        "en": {"hls": "https://cdn.example.org/a/en.m3u8?x=1"},
        "de": {"hls": "https://cdn.example.org/de/live"},
    }
    assert list(data["segments"][0]["streams"]) == ["de", "en"]  # `original:` moves it first
    assert data["segments"][0]["streams"]["en"] == {"embed": "https://player.example.com/e/1"}


@pytest.mark.parametrize(
    ("streams_yaml", "message"),
    [
        (
            "{en: 'ftp://cdn.example.org/a.m3u8'}",
            "segments[0].streams: 'ftp://cdn.example.org/a.m3u8': only http and https",
        ),
        ("{en: 'javascript:alert(1)//.m3u8'}", "only http and https"),
        ("{en: 'https://cdn.example.org/page.html'}", "not an HLS playlist (.m3u8)"),
        ('{en: {hls: "https://cdn.example.org/a\'; script-src *"}}', "en: "),
        ("{en: {hls: 'https://cdn.example.org/a b.m3u8'}}", "not a plain URL"),
        ("{en: {hls: 'https://[::1]:8000/a.m3u8'}}", "host must be a name or an IPv4 address"),
        ("{en: {hls: 'https://user:pw@cdn.example.org/a.m3u8'}}", "no user or password"),
        ("{en: {video: 'https://cdn.example.org/a.m3u8'}}", "write a URL ending .m3u8, or {hls: URL} or {embed: URL}"),
        ("{english: 'https://cdn.example.org/a.m3u8'}", "'english' is not a language code"),
        (
            "{original: fr, en: 'https://cdn.example.org/a.m3u8'}",
            "original: 'fr' is not one of the languages listed (en)",
        ),
        ("[https://cdn.example.org/a.m3u8]", "streams must be a mapping"),
    ],
)
def test_bad_streams_are_refused_naming_where(streams_yaml: str, message: str) -> None:
    with pytest.raises(ScheduleError) as err:
        parse(doc(segment=f", streams: {streams_yaml}"), today=DAY)
    assert str(err.value).startswith("segments[0].streams: ")
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("where", "i18n", "message"),
    [
        ("studio", "{ru: {title: X}}", "studios[0].i18n.ru: unknown field 'title' (one of name, city, country)"),
        ("segment", "{Russian: {title: X}}", "segments[0].i18n: 'Russian' is not a language code"),
        ("segment", "{ru: {title: ''}}", "segments[0].i18n.ru.title: must be non-empty text"),
        ("speaker", "{ru: [Chief]}", "segments[0].speakers[0].i18n.ru: must map fields (title, organisation) to text"),
        ("speaker", "[ru]", "segments[0].speakers[0].i18n: must map languages to fields"),
    ],
)
def test_bad_translations_are_refused_naming_where(where: str, i18n: str, message: str) -> None:
    with pytest.raises(ScheduleError) as err:
        parse(doc(**{where: f", i18n: {i18n}"}), today=DAY)
    assert str(err.value).startswith(message)


@pytest.mark.integration
def test_the_programme_carries_streams_and_translations_and_the_csp_admits_them(
    settings_factory, ctx, tmp_path: Path
) -> None:
    path = tmp_path / "event.yaml"
    path.write_text(
        doc(
            studio=", streams: {en: 'https://cdn.example.org/a/en.m3u8'}, i18n: {de: {name: 'Studio A (de)'}}",
            segment=", streams: {de: {embed: 'https://player.example.com/e/1'}}",
            speaker=", i18n: {de: {title: Chef}}",
        ),
        encoding="utf-8",
    )
    event_id = load(ctx, path, today=DAY)
    view = snapshots.schedule(ctx, event_id)
    assert view["studios"][0]["streams"] == [{"language": "en", "hls": "https://cdn.example.org/a/en.m3u8"}]
    assert view["studios"][0]["i18n"] == {"name": {"de": {"text": "Studio A (de)", "machine": False}}}
    assert view["segments"][0]["streams"] == [{"language": "de", "embed": "https://player.example.com/e/1"}]
    assert view["speakers"][0]["i18n"] == {"title": {"de": {"text": "Chef", "machine": False}}}
    with ctx.read() as db:
        assert streams.sources(db, event_id) == (["https://cdn.example.org"], ["https://player.example.com"])

    server = start_server(settings_factory(event="s"))
    try:
        viewer = httpx.get(server.base + "/").headers["content-security-policy"]
        assert "media-src 'self' blob: https://cdn.example.org;" in viewer
        assert "frame-src https://player.example.com;" in viewer and "frame-ancestors 'none'" in viewer
        for other in ("/embed", "/moderate"):
            policy = httpx.get(server.base + other).headers["content-security-policy"]
            assert "cdn.example.org" not in policy and "player.example.com" not in policy
    finally:
        server.stop()

    # Loaded again without them: gone from the programme (and, within seconds, from the CSP).
    path.write_text(doc(), encoding="utf-8")
    load(ctx, path, today=DAY)
    view = snapshots.schedule(ctx, event_id)
    assert view["studios"][0]["streams"] == [] and view["segments"][0]["streams"] == []
    assert view["studios"][0]["i18n"] == {} and view["speakers"][0]["i18n"] == {}
