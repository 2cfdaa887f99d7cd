"""Watch in your language, and the programme in it (issue 13, parts 3 and 5), in Chromium.

Two short HLS streams made by ffmpeg here (a test pattern with a different tone each)
are served from a second origin; the viewer page plays the one in the viewer's
language and switches when the language changes. The programme shows in the viewer's
language, machine translations marked, times in the browser's zone with day words.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from qa_service.services.event_loader import load, load_event
from workers import programme

from ..support import SECOND, free_port, start_server
from .conftest import doc_shot, shot

pytestmark = [pytest.mark.browser, pytest.mark.integration]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
FFMPEG = shutil.which("ffmpeg")


def make_hls(folder: Path, tone: int, label: str) -> None:
    """A 6 s VOD playlist of 1 s segments: SMPTE-like bars with ``label`` drawn on, and a sine tone."""
    folder.mkdir(parents=True)
    subprocess.run(
        [FFMPEG or "ffmpeg", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc=size=320x180:rate=25",
         "-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=44100",
         "-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
         "-g", "25", "-c:a", "aac", "-b:a", "64k",
         "-metadata", f"title={label}",
         "-f", "hls", "-hls_time", "1", "-hls_list_size", "0", "-hls_playlist_type", "vod",
         str(folder / "index.m3u8")],
        check=True,
        timeout=120,
    )  # fmt: skip


class CorsHandler(SimpleHTTPRequestHandler):
    """A stream server on another origin, as a CDN would be: hls.js reads it cross-origin."""

    extensions_map = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t"}

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if FFMPEG is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg): no test streams to play")
    root = tmp_path_factory.mktemp("hls")
    make_hls(root / "en", 440, "en")
    make_hls(root / "de", 880, "de")
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(CorsHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


EVENT = """
event:
  slug: watch-test
  name: "Watch test"
  moderator_language: en
  viewer_languages: [en, de, ru, ar, zh]
  timezone: UTC
studios:
  - slug: berlin
    name: "Berlin studio"
    city: Berlin
    country: Germany
    timezone: Europe/Berlin
    host_languages: [en]
    streams:
      en: {base}/en/index.m3u8
      de: {{hls: {base}/de/index.m3u8}}
segments:
  - studio: berlin
    title: "Digital twins"
    start: "08:00"
    end: "09:00"
    speakers:
      - {{name: "Katrin Becker", title: "Head of Digital Production", languages: [de, en]}}
"""


@pytest.fixture
def watch_server(settings_factory: Any, ctx: Any, streams: str, tmp_path: Path) -> Iterator[Any]:
    path = tmp_path / "event.yaml"
    path.write_text(EVENT.format(base=streams), encoding="utf-8")
    load(ctx, path, shift_to=datetime.now(UTC) - timedelta(minutes=1))
    server = start_server(settings_factory(event="watch-test"))
    yield server
    server.stop()


def directives(csp: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in csp.split(";") if part.strip())}


def playing(page: Any, language: str, streams: str, *, beyond: float = 0.5) -> None:
    """The screen holds ``language``'s stream, and its video plays (time moves past ``beyond``)."""
    video = page.locator("#screen video")
    expect(page.locator("#screen")).to_have_attribute("data-language", language)
    expect(video).to_have_attribute("data-src", f"{streams}/{language}/index.m3u8")
    page.wait_for_function(
        "t => { const v = document.querySelector('#screen video'); return v && v.readyState >= 2 && v.currentTime > t; }",
        arg=beyond,
        timeout=20 * SECOND * 1000,
    )


def test_the_player_plays_the_viewers_language_and_switches_with_it(watch_server, streams, new_page) -> None:
    # The page's CSP admits the stream's origin (fetched and played), and no other page's does.
    policy = directives(httpx.get(watch_server.base + "/").headers["content-security-policy"])
    assert policy["media-src"] == ["'self'", "blob:", streams]
    assert streams in policy["connect-src"] and "frame-src" not in policy
    assert streams not in httpx.get(watch_server.base + "/embed").headers["content-security-policy"]

    page = new_page(locale="en-US", viewport=DESKTOP)
    page.goto(watch_server.base + "/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#watch")).to_be_visible()
    playing(page, "en", streams)
    engine = page.locator("#screen video").get_attribute("data-engine")
    assert engine in ("native", "hls.js")
    # Desktop: the player beside the ask box.
    player, ask = page.locator("#watch").bounding_box(), page.locator("#ask-form").bounding_box()
    assert player and ask and player["x"] + player["width"] <= ask["x"] and abs(player["y"] - ask["y"]) < 80
    shot(page, "viewer-player-desktop-en")

    # "Watch in": the other language's stream replaces this one, and plays.
    page.select_option("#watch-lang", "de")
    playing(page, "de", streams)
    # The page in a language follows with the stream in it: German, then English again.
    page.select_option("#lang-select", "de")
    playing(page, "de", streams)
    expect(page.locator(".watch-lang span")).to_have_text("Ansehen auf")
    page.select_option("#lang-select", "en")
    playing(page, "en", streams)
    # In a language without a stream of its own: the original (the first listed).
    page.select_option("#lang-select", "ru")
    playing(page, "en", streams)
    expect(page.locator("#watch-lang option").first).to_contain_text("(оригинал)")
    assert page.js_errors == []


@pytest.mark.parametrize("locale", ["en", "ar", "zh"])
def test_player_screenshots_phone_and_desktop(watch_server, streams, new_page, locale) -> None:
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page = new_page(locale=locale, viewport=viewport)
        page.goto(watch_server.base + "/")
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        expect(page.locator("html")).to_have_attribute("lang", locale)
        playing(page, "en", streams)
        if name == "phone":  # the player above the ask box
            player, ask = page.locator("#watch").bounding_box(), page.locator("#ask-form").bounding_box()
            assert player and ask and player["y"] + player["height"] <= ask["y"]
        doc_shot(page, f"viewer-player-{name}-{locale}")
        assert page.js_errors == []


PROGRAMME = """
event:
  slug: programme-test
  name: "Programme test"
  moderator_language: en
  viewer_languages: [en, de]
  date: "{day}"
  timezone: UTC
studios:
  - slug: cairo
    name: "Hello from Cairo!"
    city: Cairo
    country: Egypt
    timezone: Africa/Cairo
    host_languages: [en]
    i18n: {{de: {{name: "Studio Kairo", city: Kairo, country: Ägypten}}}}
segments:
  - studio: cairo
    title: "Good morning from Lima!"
    start: "14:30"
    end: "15:30"
    speakers:
      - {{name: "Omar Hassan", title: "Thank you for the talk!", languages: [en]}}
"""


class PhraseEngine:
    """A stand-in for the Argos engine that knows two phrases (the real one is tested
    with the real test models in tests/workers/test_programme.py)."""

    pairs = {("en", "de")}
    known = {"Good morning from Lima!": "Guten Morgen aus Lima!", "Thank you for the talk!": "Danke für den Vortrag!"}

    def translate_route(self, route: list[str], texts: list[str]) -> list[str]:
        assert route == ["en", "de"]
        return [self.known.get(t, "") for t in texts]


def test_the_programme_in_the_viewers_language_and_time_zone(settings_factory, ctx, browser, tmp_path) -> None:
    # A Monday, far from today: 14:30–15:30 UTC is Mon 23:30 – Tue 00:30 in Tokyo.
    monday = date(2031, 3, 3)
    assert monday.weekday() == 0
    path = tmp_path / "event.yaml"
    path.write_text(PROGRAMME.format(day=monday.isoformat()), encoding="utf-8")
    loaded = load_event(ctx, path)
    server = start_server(settings_factory(event="programme-test"))
    try:
        context = browser.new_context(locale="de-DE", timezone_id="Asia/Tokyo", viewport=PHONE)
        page = context.new_page()
        page.goto(server.base + "/")
        item = page.locator("#schedule li").first
        # ICU versions differ on the dot after a German weekday.
        expect(item.locator("time")).to_have_text(re.compile(r"^Mo\.? 23:30 – Di\.? 00:30$"))
        expect(item.locator("time")).to_have_class("crosses")
        # The studio's name from the event file (not marked); the title still in the original.
        expect(item.locator(".where")).to_contain_text("Studio Kairo, Kairo")
        expect(item.locator(".seg-title")).to_have_text("Good morning from Lima!")
        expect(item.locator(".mt")).to_have_count(0)
        # The workers translate the rest: the open page shows it at once, marked.
        assert programme.translate(ctx, loaded.event_id, loaded.programme_language, PhraseEngine())["records"] == 2
        expect(item.locator(".seg-title")).to_have_text("Guten Morgen aus Lima!")
        expect(item.locator(".what > .mt")).to_have_text("maschinell übersetzt")
        expect(item.locator(".where .mt")).to_have_count(0)
        # In English (the original): no mark, and the same times.
        page.select_option("#lang-select", "en")
        expect(item.locator(".seg-title")).to_have_text("Good morning from Lima!")
        expect(item.locator(".mt")).to_have_count(0)
        expect(item.locator("time")).to_have_text(re.compile(r"^Mon 11:30\sPM – Tue 12:30\sAM$"))
        context.close()

        # In the studio's zone the same segment stays within one day: no day words beyond the date's own.
        context = browser.new_context(locale="de-DE", timezone_id="UTC", viewport=PHONE)
        page = context.new_page()
        page.goto(server.base + "/")
        time_text = page.locator("#schedule li time").first
        expect(time_text).not_to_have_class("crosses")
        expect(time_text).to_contain_text("14:30–15:30")
        doc_shot(page, "viewer-programme-de")
        context.close()
    finally:
        server.stop()


def test_day_words_today_and_tomorrow(settings_factory, ctx, browser, tmp_path) -> None:
    """A segment from 23:30 today to 00:30 tomorrow in the viewer's zone reads with today's words."""
    zone = "Asia/Tokyo"
    from zoneinfo import ZoneInfo

    now = datetime.now(ZoneInfo(zone))
    start = now.replace(hour=23, minute=30, second=0, microsecond=0)
    if start <= now:  # past 23:30 in Tokyo: tomorrow's
        start += timedelta(days=1)
    start_utc = start.astimezone(UTC)
    event = textwrap.dedent(
        f"""
        event: {{slug: day-words, name: "Day words", moderator_language: en, viewer_languages: [en, de],
                 date: "{start_utc.date().isoformat()}", timezone: UTC}}
        studios:
          - {{slug: s, name: S, city: C, country: X, timezone: UTC, host_languages: [en]}}
        segments:
          - studio: s
            title: Late
            start: "{start_utc:%H:%M}"
            end: "{(start_utc + timedelta(hours=1)):%H:%M}"
            speakers: [{{name: A, languages: [en]}}]
        """
    )
    if (start_utc + timedelta(hours=1)).date() != start_utc.date():
        pytest.skip("the hour crosses midnight in UTC too (the event file cannot say that)")
    path = tmp_path / "event.yaml"
    path.write_text(event, encoding="utf-8")
    load(ctx, path)
    server = start_server(settings_factory(event="day-words"))
    try:
        context = browser.new_context(locale="en-US", timezone_id=zone, viewport=PHONE)
        page = context.new_page()
        page.goto(server.base + "/")
        words = r"^Today 11:30\sPM – tomorrow 12:30\sAM$" if start.date() == now.date() else r"^Tomorrow 11:30\sPM – "
        expect(page.locator("#schedule li time").first).to_have_text(re.compile(words))
        context.close()
    finally:
        server.stop()


def test_without_native_hls_the_vendored_hls_js_plays_and_switches(watch_server, streams, new_page) -> None:
    """Chromium here plays HLS itself; most desktop browsers do not: hide that, and hls.js takes over."""
    page = new_page(locale="en-US", viewport=DESKTOP)
    page.add_init_script(
        "const can = HTMLMediaElement.prototype.canPlayType;"
        "HTMLMediaElement.prototype.canPlayType = function (t) { return /mpegurl/i.test(t) ? '' : can.call(this, t); };"
    )
    page.goto(watch_server.base + "/")
    playing(page, "en", streams)
    video = page.locator("#screen video")
    expect(video).to_have_attribute("data-engine", "hls.js")
    expect(video).to_have_attribute("data-manifest", "parsed")
    assert page.evaluate("document.querySelector('#screen video').src").startswith("blob:")  # a MediaSource
    page.select_option("#watch-lang", "de")
    playing(page, "de", streams)
    expect(page.locator("#screen video")).to_have_attribute("data-engine", "hls.js")
    assert page.js_errors == []
