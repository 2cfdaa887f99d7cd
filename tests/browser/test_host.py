"""The studio host display and its overlay (issue 12, host part) in real headless Chromium:
any allowed question fits a 1920x1080 screen and a lower third, names cannot reorder the
line they sit in, an untranslated question says so, a lost connection is unmistakable,
and each studio's display speaks its host's language."""

from __future__ import annotations

import json
import re
import time
import unicodedata
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from qa_service.security import Signer
from qa_service.services import questions, schedule

from ..support import SCALE, start_server
from .conftest import doc_shot, shot

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ROOT / "moderator_ui" / "static" / "locales"
LANGS = ["en", "ru", "zh", "id", "uz", "ar", "de", "fr", "es"]
FULL_HD = {"width": 1920, "height": 1080}
WAIT_MS = int(10_000 * SCALE)
HOST_MIN_PX = 36  # readable from a few metres on a 1080-line studio monitor
OVERLAY_MIN_PX = 32  # a lower third's smallest broadcast type at 1080 lines
LOWER_THIRD_MAX = 0.26  # of the frame's height: "about a quarter"

LATIN_500 = (
    "Good afternoon from Novosibirsk. We run a mid-sized plant that machines gearbox housings for "
    "agricultural equipment, and over the last two years our energy bill has doubled while our "
    "export orders to Kazakhstan and Uzbekistan have grown by forty percent. Which of the state "
    "programmes you mentioned would cover a switch from gas furnaces to induction heating, how long "
    "does an application usually take, and do you see plants of our size getting access to the same "
    "cheap loans that the large holdings receive, or is that still only for them? Thank you."
)[:500].strip()
CHINESE_500 = (
    "您好，我们是一家位于苏州的中型机器人集成公司，主要为汽车零部件厂提供焊接和搬运工作站。"
    "过去两年，我们的客户越来越多地要求柔性生产线，能够在同一条线上切换不同型号的产品。"
    "请问您在工厂里是如何解决视觉系统标定和机器人编程时间过长的问题的？"
    "另外，对于中小企业来说，协作机器人和传统工业机器人相比，投资回报周期一般是多长？"
    "在人才培养方面，您认为企业应该自己培训工程师，还是与职业院校合作更有效？"
    "最后，您如何看待未来五年人工智能在质量检测中的作用，以及数据安全方面需要注意什么？谢谢！"
) * 4
CHINESE_500 = CHINESE_500[:500]
LONG_WORD = ("Rindfleischetikettierungsueberwachungsaufgabenuebertragungsgesetz" * 2)[:120]
UNBREAKABLE = (
    f"Our compliance team keeps sending me this identifier: {LONG_WORD} and nobody can tell me what it "
    "means for a supplier of sensors. Could you explain which documents a small exporter really needs "
    "before shipping to the European Union next year, and who checks them at the border?"
)
OVERRIDE_NAME = "\u202eKarim Adel"  # RIGHT-TO-LEFT OVERRIDE: draws "ledA miraK" and flips what follows
ARABIC_NAME = "عمر الفاروق"
ARABIC_QUESTION = "ما هي خطط التصدير إلى أوروبا في العام المقبل؟"


def strings(lang: str) -> dict[str, str]:
    return dict(json.loads((LOCALES / f"host.{lang}.json").read_text(encoding="utf-8")))


def host_url(server: Any, settings: Any, studio: Any, query: str = "") -> str:
    token = Signer(settings.secret_key).host_token(studio.id, studio.host_token_version)
    return f"{server.base}/host/{token}{query}"


def make_live(ctx: Any, event_id: int, sample: dict[str, Any], slug: str) -> None:
    """Put a studio's segment on air by hand (the sample's clock starts in Moscow)."""
    segment = sample["segments"][sample["studios"][slug].id]
    if segment.status != "live":
        schedule.set_status(ctx, event_id, segment.id, "live", "test")


def queue(
    ctx: Any,
    event_id: int,
    speaker: Any,
    text: str,
    *,
    language: str,
    name: str | None = None,
    country: str | None = None,
    on_air: bool = False,
    translations: dict[str, str] | None = None,
) -> int:
    """Ask, approve into the studio's queue, optionally translate and put on air."""
    payload = {
        "client_id": uuid.uuid4().hex,
        "speaker_id": speaker.id,
        "text": text,
        "language": language,
        "display_name": name,
        "country": country,
    }
    qid = int(questions.ask(ctx, event_id, f"viewer-{uuid.uuid4().hex[:12]}", payload).question["id"])
    questions.moderate(ctx, event_id, qid, "approve", "mod1", expected_version=None)
    for lang, fixed in (translations or {}).items():
        questions.edit_translation(ctx, event_id, qid, lang, fixed, "mod1", expected_version=None)
    if on_air:
        questions.moderate(ctx, event_id, qid, "on_air", "mod1", expected_version=None)
    return qid


def settle(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Retry a measurement until it passes (layout and fonts settle), else raise its last failure."""
    deadline = time.monotonic() + timeout * SCALE
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def squeeze(text: str) -> str:
    return "".join(text.split())


# ── fitting ──────────────────────────────────────────────────────────────────
FIT = """([box, frame]) => {
  const b = document.querySelector(box).getBoundingClientRect();
  const f = frame ? document.querySelector(frame).getBoundingClientRect() : null;
  const s = document.querySelector(box);
  return {
    docHeight: Math.max(document.documentElement.scrollHeight, document.body.scrollHeight),
    docWidth: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
    vh: innerHeight, vw: innerWidth,
    top: b.top, bottom: b.bottom, left: b.left, right: b.right,
    overflowY: s.scrollHeight - s.clientHeight, overflowX: s.scrollWidth - s.clientWidth,
    font: parseFloat(getComputedStyle(s).fontSize),
    frameTop: f && f.top, frameBottom: f && f.bottom, frameHeight: f && f.height,
    page: Number(s.dataset.page || 1), pages: Number(s.dataset.pages || 1), text: s.textContent,
  };
}"""


def check_fits(page: Any, box: str, min_px: int, frame: str | None = None) -> dict[str, Any]:
    m = page.evaluate(FIT, [box, frame])
    assert m["docHeight"] <= m["vh"], f"the page is {m['docHeight']} px tall on a {m['vh']} px screen"
    assert m["docWidth"] <= m["vw"], f"the page is {m['docWidth']} px wide on a {m['vw']} px screen"
    assert 0 <= m["top"] and m["bottom"] <= m["vh"], f"{box} spans {m['top']}..{m['bottom']} px of {m['vh']}"
    assert 0 <= m["left"] and m["right"] <= m["vw"], f"{box} spans {m['left']}..{m['right']} px of {m['vw']}"
    assert m["overflowY"] <= 1 and m["overflowX"] <= 1, f"{box}'s text is cut off: {m}"
    assert m["font"] >= min_px, f"{box} is set in {m['font']} px, below the readable {min_px} px"
    if frame:
        assert m["frameHeight"] <= LOWER_THIRD_MAX * m["vh"], f"the lower third is {m['frameHeight']} px tall"
        assert m["frameBottom"] <= m["vh"] and m["frameTop"] >= m["vh"] / 2, f"not a lower third: {m}"
    return dict(m)


def read_pages(page: Any, box: str, turn: Callable[[], None], min_px: int, frame: str | None = None) -> list[str]:
    """Every page of the question, each checked to fit, until the first page comes back."""
    first = settle(lambda: check_fits(page, box, min_px, frame))
    seen = [first["text"]]
    pages = first["pages"]
    assert first["page"] == 1
    for n in range(2, pages + 1):
        turn()
        expect(page.locator(box)).to_have_attribute("data-page", str(n), timeout=WAIT_MS)
        seen.append(settle(lambda: check_fits(page, box, min_px, frame))["text"])
    if pages > 1:
        turn()
        expect(page.locator(box)).to_have_attribute("data-page", "1", timeout=WAIT_MS)
    return seen


NEXT = {
    "moscow": [
        (ARABIC_QUESTION, "ar", ARABIC_NAME, "EG"),
        (LATIN_500, "en", "Maria Petrova", "KZ"),
        ("Сколько человек работает на заводе?", "ru", None, None),
        ("Какие станки вы покупаете в этом году?", "ru", "Олег", "RU"),
    ],
    "shanghai": [
        ("贵公司的机器人主要出口到哪些国家？", "zh", "李娜", "CN"),
        (CHINESE_500, "zh", "王伟", "SG"),
        ("How do you train engineers for the new lines?", "en", "Tom", "GB"),
    ],
}
CASES = {
    "latin-500": ("moscow", 0, LATIN_500, "en"),
    "chinese-500": ("shanghai", 1, CHINESE_500, "zh"),
    "unbreakable-120": ("moscow", 0, UNBREAKABLE, "en"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_any_allowed_question_fits_the_host_display(server, settings, ctx, event_id, sample, new_page, case) -> None:
    slug, who, text, language = CASES[case]
    assert len(text) <= settings.max_question_chars
    make_live(ctx, event_id, sample, slug)
    speakers = sample["speakers"][slug]
    queue(ctx, event_id, speakers[who], text, language=language, name="Ivan", country="RU", on_air=True)
    for question, lang, name, country in NEXT[slug]:  # a full NEXT column beside it, long ones too
        queue(ctx, event_id, speakers[1], question, language=lang, name=name, country=country)
    page = new_page(viewport=FULL_HD)
    page.goto(host_url(server, settings, sample["studios"][slug]))
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#cur-text")).not_to_have_text(re.compile(r"^—?$"))  # rendered, not empty or "—"
    pages = read_pages(page, "#cur-text", lambda: page.keyboard.press("Space"), HOST_MIN_PX)
    assert squeeze("".join(pages)) == squeeze(text), "the full question is not reachable page by page"
    if len(pages) > 1:  # the host is told there is more, and how to get it
        expect(page.locator("#cur-more")).to_be_visible()
        expect(page.locator("#cur-more")).to_contain_text(strings(page.evaluate("I18n.lang"))["more_key"])
    if case == "latin-500":
        doc_shot(page, "host-long-1920")
    elif case == "chinese-500":  # the Shanghai studio: its display speaks Chinese
        assert page.evaluate("document.documentElement.lang") == "zh"
        expect(page.locator("#on-air-label")).to_have_text(strings("zh")["on_air"])
        doc_shot(page, "host-zh")
    else:
        shot(page, f"host-{case}")
    assert page.js_errors == []


def test_a_long_question_fits_a_laptop_window_too(server, settings, ctx, event_id, sample, new_page) -> None:
    """Type sizes follow the window: 720 lines get the same layout, in smaller type."""
    speakers = sample["speakers"]["moscow"]
    queue(ctx, event_id, speakers[0], UNBREAKABLE, language="en", name="Ivan", country="RU", on_air=True)
    queue(ctx, event_id, speakers[1], LATIN_500, language="en", name="Maria Petrova", country="KZ")
    page = new_page(viewport={"width": 1280, "height": 720})
    page.goto(host_url(server, settings, sample["studios"]["moscow"]))
    expect(page.locator("#cur-text")).not_to_have_text(re.compile(r"^—?$"))
    min_px = HOST_MIN_PX * 720 // 1080
    pages = read_pages(page, "#cur-text", lambda: page.keyboard.press("ArrowDown"), min_px)
    assert squeeze("".join(pages)) == squeeze(UNBREAKABLE)
    shot(page, "host-laptop-720")
    assert page.js_errors == []


def test_combining_mark_towers_do_not_shrink_or_page_a_short_question(
    server, settings, ctx, event_id, sample, new_page
) -> None:
    """Marks stacked on each letter draw far outside their line; they are cut at the box,
    and must not count as text that does not fit (no tiny type, no page per letter)."""
    tower = "".join(
        ch + "".join(chr(0x0300 + (i * 7 + j * 13) % 0x70) for j in range(8)) for i, ch in enumerate("Zalgo")
    )
    text = unicodedata.normalize("NFC", f"{tower} asks: when do exports start?")  # as stored
    queue(ctx, event_id, sample["speakers"]["moscow"][0], text, language="en", on_air=True)
    page = new_page(viewport=FULL_HD)
    page.goto(host_url(server, settings, sample["studios"]["moscow"]))
    expect(page.locator("#cur-text")).to_have_text(text)
    m = settle(lambda: check_fits(page, "#cur-text", HOST_MIN_PX))
    assert m["pages"] == 1 and m["font"] >= 60, m
    assert page.js_errors == []


@pytest.mark.parametrize("case", list(CASES))
def test_any_allowed_question_fits_the_overlay(server, settings, ctx, event_id, sample, new_page, case) -> None:
    slug, who, text, language = CASES[case]
    make_live(ctx, event_id, sample, slug)
    queue(ctx, event_id, sample["speakers"][slug][who], text, language=language, name="Ivan", country="RU", on_air=True)
    page = new_page(viewport=FULL_HD)
    page.goto(host_url(server, settings, sample["studios"][slug], "?overlay=1&page_seconds=1"))
    expect(page.locator("#lt-text")).not_to_be_empty()
    # No keyboard in OBS or vMix: the overlay turns its pages by itself.
    pages = read_pages(page, "#lt-text", lambda: None, OVERLAY_MIN_PX, frame="#lower-third")
    assert squeeze("".join(pages)) == squeeze(text), "the full question is not reachable page by page"
    if case == "latin-500":
        # Over a dark checkerboard, as a vision mixer shows a transparent source.
        page.evaluate(
            """() => { const s = document.documentElement.style;
              s.background = 'repeating-conic-gradient(#1b1f27 0 25%, #2b3140 0 50%) 0 0 / 48px 48px'; }"""
        )
        expect(page.locator("#lt-text")).to_have_attribute("data-page", "1", timeout=WAIT_MS)
        doc_shot(page, "overlay-long")
    else:
        shot(page, f"overlay-{case}")
    assert page.js_errors == []


# ── bidi ─────────────────────────────────────────────────────────────────────
# Boxes of the asker line's parts, found by their text wherever they sit in the DOM.
PARTS = """([sel, name, country, speaker]) => {
  const root = document.querySelector(sel);
  const lang = document.documentElement.lang || 'en';
  const region = new Intl.DisplayNames([lang], {type: 'region'}).of(country);
  const rectOf = (needle) => {
    const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const nodes = [];
    for (let n = walk.nextNode(); n; n = walk.nextNode()) nodes.push(n);
    nodes.sort((a, b) => (b.data === needle) - (a.data === needle));  // a whole text node first
    for (const n of nodes) {
      const i = n.data.indexOf(needle);
      if (i < 0) continue;
      const r = document.createRange();
      r.setStart(n, i); r.setEnd(n, i + needle.length);
      const b = r.getBoundingClientRect();
      return {left: b.left, right: b.right, top: b.top, bottom: b.bottom};
    }
    return null;
  };
  const arrow = rectOf('\u2192') ? '\u2192' : (rectOf('\u2190') ? '\u2190' : null);
  return {
    dir: getComputedStyle(root).direction, region,
    name: rectOf(name), country: rectOf(region), arrow: arrow && rectOf(arrow), glyph: arrow,
    speaker: rectOf(speaker),
  };
}"""


def check_line_order(page: Any, sel: str, name: str, country: str, speaker: str, direction: str) -> None:
    p = page.evaluate(PARTS, [sel, name, country, speaker])
    for part in ("name", "country", "arrow", "speaker"):
        assert p[part] is not None, f"{sel}: no {part} in the line ({p})"
    assert p["dir"] == direction, f"{sel} runs {p['dir']}, the interface {direction}"
    order = [p["name"], p["country"], p["arrow"], p["speaker"]]
    for a, b in zip(order, order[1:], strict=False):
        assert abs(a["top"] - b["top"]) < 4, f"{sel}: the line wrapped ({p})"
        if direction == "ltr":
            assert a["right"] <= b["left"] + 1, f"{sel}: parts out of order left to right ({p})"
        else:
            assert a["left"] >= b["right"] - 1, f"{sel}: parts out of order right to left ({p})"
    assert p["glyph"] == ("\u2192" if direction == "ltr" else "\u2190"), "the arrow must point at the speaker"


@pytest.mark.parametrize(("slug", "direction"), [("moscow", "ltr"), ("cairo", "rtl")])
def test_a_name_cannot_reorder_the_host_line(
    server, settings, ctx, event_id, sample, new_page, slug: str, direction: str
) -> None:
    make_live(ctx, event_id, sample, slug)
    first, second = sample["speakers"][slug]
    queue(
        ctx,
        event_id,
        first,
        "What comes next for exports?",
        language="en",
        name=OVERRIDE_NAME,
        country="US",
        on_air=True,
    )
    queue(ctx, event_id, second, ARABIC_QUESTION, language="ar", name=ARABIC_NAME, country="EG")
    host = new_page(viewport=FULL_HD)
    host.goto(host_url(server, settings, sample["studios"][slug]))
    expect(host.locator("#conn")).to_have_attribute("data-state", "live")
    expect(host.locator("#next li")).to_have_count(1)
    settle(lambda: check_line_order(host, "#cur-asker", OVERRIDE_NAME, "US", first.name, direction))
    settle(lambda: check_line_order(host, "#next li .who", ARABIC_NAME, "EG", second.name, direction))
    shot(host, f"host-bidi-{slug}")
    overlay = new_page(viewport=FULL_HD)
    overlay.goto(host_url(server, settings, sample["studios"][slug], "?overlay=1"))
    expect(overlay.locator("#lt-text")).to_have_text("What comes next for exports?")
    settle(lambda: check_line_order(overlay, "#lt-asker", OVERRIDE_NAME, "US", first.name, direction))
    shot(overlay, f"overlay-bidi-{slug}", transparent=True)
    assert host.js_errors == [] and overlay.js_errors == []


# ── translation ──────────────────────────────────────────────────────────────
def test_an_untranslated_question_says_so_in_the_hosts_language(
    server, settings, ctx, event_id, sample, new_page
) -> None:
    speaker = sample["speakers"]["moscow"][1]  # Dmitry Orlov reads Russian only
    assert speaker.languages == ["ru"]
    qid = queue(ctx, event_id, speaker, ARABIC_QUESTION, language="ar", name=ARABIC_NAME, country="EG", on_air=True)
    studio = sample["studios"]["moscow"]
    host = new_page(viewport=FULL_HD)
    host.goto(host_url(server, settings, studio, "?lang=en"))
    expect(host.locator("#cur-text")).to_have_text(ARABIC_QUESTION)
    expect(host.locator("#cur-marker")).to_be_visible()
    expect(host.locator("#cur-marker")).to_have_text("NOT TRANSLATED — original in Arabic")
    expect(host.locator("#cur-lang")).to_contain_text("Arabic")
    doc_shot(host, "host-untranslated")
    # The studio's own language (Moscow: Russian) names the language in Russian.
    ru = new_page(viewport=FULL_HD)
    ru.goto(host_url(server, settings, studio))
    expect(ru.locator("#cur-marker")).to_have_text(strings("ru")["untranslated"].format(language="арабский"))
    overlay = new_page(viewport=FULL_HD)
    overlay.goto(host_url(server, settings, studio, "?overlay=1&lang=en"))
    expect(overlay.locator("#lt-marker")).to_have_text("NOT TRANSLATED — original in Arabic")
    # A moderator's translation arrives: the marker goes, the original language stays named.
    questions.edit_translation(
        ctx, event_id, qid, "ru", "Каковы планы экспорта в Европу?", "mod1", expected_version=None
    )
    expect(host.locator("#cur-text")).to_have_text("Каковы планы экспорта в Европу?")
    expect(host.locator("#cur-marker")).to_be_hidden()
    expect(host.locator("#cur-lang")).to_contain_text("Arabic")
    expect(host.locator("#cur-original")).to_contain_text(ARABIC_QUESTION)
    expect(overlay.locator("#lt-marker")).to_be_hidden()
    for page in (host, ru, overlay):
        assert page.js_errors == []


def test_merged_questions_show_how_many_asked(server, settings, ctx, event_id, sample, new_page) -> None:
    """merged_count comes with the host's view of a question; the display says how many
    people asked. Set in the socket's snapshot here: the merge itself is the server's test."""

    def route(ws: Any) -> None:
        upstream = ws.connect_to_server()

        def down(message: str | bytes) -> None:
            msg = json.loads(message)
            if msg.get("type") == "snapshot":
                for q in msg["payload"]["questions"]:
                    q["merged_count"] = 2
                message = json.dumps(msg)
            ws.send(message)

        upstream.on_message(down)
        ws.on_message(lambda message: upstream.send(message))

    speaker = sample["speakers"]["moscow"][0]
    queue(ctx, event_id, speaker, "Do you export to Asia?", language="en", on_air=True)
    page = new_page(viewport=FULL_HD)
    page.route_web_socket(lambda url: "/ws/host" in url, route)
    page.goto(host_url(server, settings, sample["studios"]["moscow"], "?lang=en"))
    expect(page.locator("#cur-merged")).to_have_text("asked by 3 people")
    assert page.js_errors == []


# ── connection ───────────────────────────────────────────────────────────────
def test_a_lost_connection_is_unmistakable_and_clears_on_reconnect(
    server, settings, ctx, event_id, sample, new_page
) -> None:
    speaker = sample["speakers"]["moscow"][1]
    queue(ctx, event_id, speaker, "Сколько человек работает на заводе?", language="ru", name="Пётр", on_air=True)
    page = new_page(viewport=FULL_HD)
    page.goto(host_url(server, settings, sample["studios"]["moscow"], "?lang=en"))
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#offline")).to_be_hidden()
    opacity = "parseFloat(getComputedStyle(document.querySelector('#current')).opacity)"
    assert page.evaluate(opacity) == 1
    overlay = new_page(viewport=FULL_HD)
    overlay.goto(host_url(server, settings, sample["studios"]["moscow"], "?overlay=1"))
    third = overlay.locator("#lower-third")
    expect(third).to_be_visible()
    expect(third).not_to_have_class(re.compile(r"\bgone\b"))
    server.stop()  # the hub goes away for real
    expect(page.locator("#offline")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#offline")).to_contain_text("CONNECTION LOST")
    settle(lambda: _assert(page.evaluate(opacity) <= 0.5, "the stale question is not dimmed"))
    banner = page.locator("#offline").bounding_box()
    assert banner and banner["height"] >= 80 and banner["width"] >= 0.5 * FULL_HD["width"], "the banner is not large"
    before = page.locator("#offline-since").text_content()
    time.sleep(2.2)
    after = page.locator("#offline-since").text_content()
    assert before != after, f"the time since the last update does not count: {before!r} then {after!r}"
    settle(lambda: check_fits(page, "#cur-text", HOST_MIN_PX))
    doc_shot(page, "host-offline")
    # On air, nothing stale: the lower third fades out (a broadcast shows no error banner).
    expect(third).to_have_class(re.compile(r"\bgone\b"), timeout=WAIT_MS)
    port = int(server.base.rsplit(":", 1)[1])
    again = start_server(settings, port)
    try:
        expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=3 * WAIT_MS)
        expect(page.locator("#offline")).to_be_hidden()
        settle(lambda: _assert(page.evaluate(opacity) == 1, "the question stays dimmed after reconnecting"))
        expect(third).not_to_have_class(re.compile(r"\bgone\b"), timeout=3 * WAIT_MS)
        expect(overlay.locator("#lt-text")).to_have_text("Сколько человек работает на заводе?")
    finally:
        again.stop()
    assert page.js_errors == [] and overlay.js_errors == []


def _assert(ok: bool, message: str) -> None:
    assert ok, message


# ── languages ────────────────────────────────────────────────────────────────
def test_the_cairo_display_speaks_arabic_right_to_left(server, settings, ctx, event_id, sample, new_page) -> None:
    make_live(ctx, event_id, sample, "cairo")
    ar = strings("ar")
    speaker = sample["speakers"]["cairo"][0]
    queue(ctx, event_id, speaker, ARABIC_QUESTION, language="ar", name=ARABIC_NAME, country="EG", on_air=True)
    queue(
        ctx, event_id, speaker, "What share of your exports goes to Europe?", language="en", name="Anna", country="DE"
    )
    page = new_page(viewport=FULL_HD)  # an English browser: the studio's host language wins
    page.goto(host_url(server, settings, sample["studios"]["cairo"]))
    expect(page.locator("html")).to_have_attribute("lang", "ar")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#conn")).to_have_text(ar["state_live"])
    expect(page.locator("#on-air-label")).to_have_text(ar["on_air"])
    expect(page.locator("#next-label")).to_have_text(ar["next"])
    for key in ("key_next", "key_answered", "key_skip"):
        expect(page.locator(".keys")).to_contain_text(ar[key])
    expect(page.locator("#cur-asker")).to_contain_text("(مصر)")  # Egypt, named in Arabic
    expect(page.locator("#cur-text")).to_have_text(ARABIC_QUESTION)
    expect(page.locator("#next li")).to_have_count(1)
    # The ON AIR column is on the right, as a right-to-left reader starts there.
    cur, nxt = page.locator("#current").bounding_box(), page.locator(".next").bounding_box()
    assert cur and nxt and cur["x"] > nxt["x"]
    doc_shot(page, "host-ar")
    page.keyboard.press("n")  # the keys still work: ArrowRight, N, PageDown
    expect(page.locator("#cur-text")).to_have_text("What share of your exports goes to Europe?")
    # ?lang= overrides the studio's language.
    en = new_page(viewport=FULL_HD)
    en.goto(host_url(server, settings, sample["studios"]["cairo"], "?lang=en"))
    expect(en.locator("html")).to_have_attribute("dir", "ltr")
    expect(en.locator("#on-air-label")).to_have_text("ON AIR")
    assert page.js_errors == [] and en.js_errors == []


def test_every_host_locale_has_every_string() -> None:
    base = strings("en")
    for lang in LANGS:
        got = strings(lang)
        assert set(got) == set(base), f"host.{lang}.json: {set(got) ^ set(base)}"
        for key, value in got.items():
            assert isinstance(value, str) and value.strip(), f"host.{lang}.json: {key} is empty"
            assert set(re.findall(r"\{\w+\}", value)) == set(re.findall(r"\{\w+\}", base[key])), (lang, key)
