"""The XSS corpus in real Chromium: viewer questions and display names carrying script
tags, event handlers, javascript: URLs, SVG, bidi overrides and isolates, zero-width
characters and combining marks (each with visible letters, so validation takes them),
asked through the viewer page's socket, approved, queued and put on air by a moderator,
then shown by every screen: the viewer's own list, the moderation console (cards and
queue), the host display and its overlay.

On each screen: the text shows as text; no payload ran (``window.__xss`` stays unset,
no dialog opened); no element with an ``on*`` attribute, a ``javascript:`` URL or an
injected tag exists; each name and question text sits alone in a bidi-isolated element
(``<bdi>``, ``dir="auto"``, or ``unicode-bidi: isolate``/``plaintext``), so a U+202E
name cannot reverse the words around it. Screenshots of the four screens, in Arabic
and in Chinese, go to test-artifacts/screens/xss-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from qa_service.db.models import Question

from ..conftest import MOD_PASSWORD
from ..support import start_server
from .test_viewer_host import host_path

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SCREENS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screens"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
STUDIO_SCREEN = {"width": 1920, "height": 1080}


def zalgo(word: str, marks: int = 8) -> str:
    """Each letter under a stack of combining marks (U+0300-U+036F)."""
    return "".join(
        ch + "".join(chr(0x0300 + (i * 7 + j * 13) % 0x70) for j in range(marks)) for i, ch in enumerate(word)
    )


def corpus(words: tuple[str, str]) -> list[tuple[str, str]]:
    """(question, display name) pairs; ``words`` are two words in the UI's script."""
    a, b = words
    return [
        (f"{a} <script>window.__xss='script'</script> {b}?", f"<script>window.__xss='name'</script>Sam {a}"),
        (f"{a} <img src=x onerror=\"window.__xss='img'\"> {b}?", f"<img src=x onerror=window.__xss=1>{b}"),
        (f"{a} <a href=\"javascript:window.__xss='href'\">{b}</a> ok?", "javascript:window.__xss='n'"),
        (f"{a} <svg onload=\"window.__xss='svg'\"><circle r=9></svg> {b}?", f"<svg/onload=window.__xss=2>{a}"),
        (
            f"{a} \u202etxet desrever\u202c {b} \u2066LRI\u2069 \u2067RLI\u2069 \u2068FSI\u2069 end?",
            f"\u202eyrollaM {b}",
        ),
        (f"{a} ze\u200bro\u200cwi\u200dd\u2060th\ufeff {b}?", f"Z\u200bW\u200cN\u200d {a}\u2067"),
        (f"{zalgo('Zalgo')} {a} {zalgo(b, 5)}?", zalgo(f"Zed{b}", 6)[:60]),
        (
            f'{a} "><iframe src="javascript:window.__xss=\'iframe\'"></iframe><style>*{{display:none}}</style> {b}',
            f"\"'><b onmouseover=window.__xss=3>{b}</b>",
        ),
        (f"{a} {{{{constructor.constructor('window.__xss=1')()}}}} ${{window.__xss=2}} {b}?", f"\u2066{a}\u202e{b}"),
    ]


WORDS = {"ar-EG": ("سؤال", "التصدير"), "zh-CN": ("问题", "出口")}


def check(page: Any, watch: list[str], expected: list[str]) -> dict[str, Any]:
    """What is wrong on ``page`` (an empty report when nothing is). ``expected`` must
    show; every occurrence of a ``watch`` string must be alone in an isolated element."""
    return page.evaluate(
        """([watch, expected]) => {
          const nodes = [];
          const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
          while (walker.nextNode()) nodes.push(walker.currentNode);
          const isolated = (e) => e.tagName === "BDI" || e.getAttribute("dir") === "auto" ||
            ["isolate", "plaintext"].includes(getComputedStyle(e).unicodeBidi);
          const report = { missing: [], hidden: [], not_isolated: [], not_alone: [] };
          for (const p of watch) {
            const hits = nodes.filter((n) => n.data.includes(p));
            if (expected.includes(p)) {
              if (!hits.length) report.missing.push(p);
              else if (!hits.some((n) => n.parentElement.checkVisibility())) report.hidden.push(p);
            }
            for (const n of hits) {
              const e = n.parentElement;
              if (!isolated(e)) report.not_isolated.push([p, e.outerHTML.slice(0, 300)]);
              else if (e.textContent !== p) report.not_alone.push([p, e.outerHTML.slice(0, 300)]);
            }
          }
          report.handlers = [...document.querySelectorAll("*")]
            .filter((e) => [...e.attributes].some((a) => a.name.startsWith("on") || /^\\s*javascript:/i.test(a.value)))
            .map((e) => e.outerHTML.slice(0, 200));
          report.injected = [...document.querySelectorAll(
            "img, svg, iframe, frame, object, embed, style, a, math, video, audio, base, meta:not([charset]):not([name=viewport]), body script:not([src])"
          )].map((e) => e.outerHTML.slice(0, 200));
          report.xss = window.__xss === undefined ? null : String(window.__xss);
          for (const k of Object.keys(report)) if (Array.isArray(report[k]) && !report[k].length) delete report[k];
          if (report.xss === null) delete report.xss;
          return report;
        }""",
        [watch, expected],
    )


def shoot(page: Any, name: str, **kwargs: Any) -> Path:
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    page.screenshot(path=str(path), **kwargs)
    return path


@pytest.fixture
def open_server(settings_factory, event_id) -> Iterator[Any]:
    """A server that lets one viewer ask the whole corpus within a minute."""
    settings = settings_factory(questions_per_minute=100)
    srv = start_server(settings)
    yield srv, settings
    srv.stop()


@pytest.mark.parametrize("locale", ["ar-EG", "zh-CN"])
def test_the_xss_corpus_shows_as_isolated_text_and_runs_nothing(
    open_server, ctx, sample, moderator_factory, new_page, locale: str
) -> None:
    (server, settings), lang = open_server, locale[:2]
    dialogs: list[str] = []
    problems: dict[str, dict[str, Any]] = {}  # screen -> what check() found there

    def page_for(viewport: dict[str, int]) -> Any:
        page = new_page(locale=locale, viewport=viewport)
        page.on("dialog", lambda d: (dialogs.append(f"{d.type}: {d.message}"), d.dismiss()))
        return page

    # 1. A viewer asks every question of the corpus, through the page and its socket.
    viewer = page_for(PHONE)
    viewer.goto(server.base + "/")
    expect(viewer.locator("#conn")).to_have_attribute("data-state", "live")
    expect(viewer.locator("html")).to_have_attribute("lang", lang)
    speaker = sample["speakers"]["moscow"][1]
    viewer.locator(f".speaker[data-id='{speaker.id}']").click()
    pairs = corpus(WORDS[locale])
    for n, (text, name) in enumerate(pairs, start=1):
        viewer.fill("#q-text", text)
        viewer.fill("#q-name", name)
        viewer.click("#send")
        expect(viewer.locator("#mine li[data-status=received]")).to_have_count(n)
    expect(viewer.locator("#form-error")).to_be_hidden()
    with ctx.transaction() as (db, _):
        stored = [(q.id, q.version, q.text, q.display_name) for q in db.exec(select(Question).order_by(Question.id))]
    assert len(stored) == len(pairs)
    texts = [s[2] for s in stored]
    names = [s[3] for s in stored]
    assert all(names), "every display name was stored"
    for (text, _name), kept in zip(pairs, texts, strict=True):  # validation took them, letters and markup kept
        assert "<" not in text or "<" in kept
        assert any(w in kept for w in WORDS[locale])
    assert "\u202e" in names[4] and "\u202e" in texts[4], "the overrides reach the screens"
    watch = texts + names

    # 2. A moderator approves all (into the studio's queue) and puts the first on air.
    mod = moderator_factory(server)
    versions = {}
    for qid, version, *_ in stored:
        r = mod.post(f"/api/questions/{qid}/approve", json={"version": version})
        assert r.status_code == 200, r.text
        versions[qid] = r.json()["version"]
    on_air = stored[4][0]  # the U+202E name: the host's asker line must not turn around
    r = mod.post(f"/api/questions/{on_air}/on_air", json={"version": versions[on_air]})
    assert r.status_code == 200, r.text

    # 3. The viewer's own list.
    expect(viewer.locator("#mine li[data-status=on_air]")).to_have_count(1)
    problems["viewer"] = check(viewer, watch, texts)
    other = {"ar": "zh", "zh": "ar"}[lang]  # the page's own language switch re-renders the list
    viewer.select_option("#lang-select", other)
    expect(viewer.locator("html")).to_have_attribute("lang", other)
    problems[f"viewer in {other}"] = check(viewer, watch, texts)
    viewer.select_option("#lang-select", lang)
    expect(viewer.locator("html")).to_have_attribute("lang", lang)
    below_header = (
        "window.scrollTo(0, document.getElementById('mine-h').offsetTop - document.querySelector('.top').offsetHeight)"
    )
    viewer.evaluate(below_header)
    shoot(viewer, f"xss-viewer-{lang}")

    # 4. The moderation console: every card, and the studio's queue.
    console = page_for(DESKTOP)
    console.goto(server.base + "/moderate")
    console.fill("#login-user", "mod1")
    console.fill("#login-pass", MOD_PASSWORD)
    console.click("#login-form button[type=submit]")
    expect(console.locator("#conn")).to_have_attribute("data-state", "live")
    expect(console.locator("#questions li")).to_have_count(len(pairs))
    expect(console.locator("#queue li")).to_have_count(len(pairs))
    problems["console"] = check(console, watch, watch)
    shoot(console, f"xss-console-{lang}")
    zalgo_id = stored[6][0]
    console.locator(f"#questions li[data-id='{zalgo_id}']").scroll_into_view_if_needed()
    console.locator(f"#queue li[data-id='{zalgo_id}']").scroll_into_view_if_needed()
    shoot(console, f"xss-console-zalgo-{lang}")

    # 5. The host display and the overlay, with each question on air in turn.
    studio = sample["studios"]["moscow"]
    host = page_for(STUDIO_SCREEN)
    host.goto(server.base + host_path(settings, studio))
    overlay = page_for(STUDIO_SCREEN)
    overlay.goto(server.base + host_path(settings, studio) + "?overlay=1")
    for page in (host, overlay):
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    order = [on_air] + [s[0] for s in stored if s[0] != on_air]
    by_id = {s[0]: s for s in stored}
    for i, qid in enumerate(order):
        if i:
            r = mod.post(f"/api/questions/{qid}/on_air", json={"version": versions[qid]})
            assert r.status_code == 200, r.text
        _, _, text, name = by_id[qid]
        expect(host.locator("#cur-text")).to_have_text(text)
        expect(overlay.locator("#lt-text")).to_have_text(text)
        upcoming = [by_id[x] for x in order[i + 1 : i + 4]]
        expect(host.locator("#next li")).to_have_count(len(upcoming))
        problems[f"host, #{qid} on air"] = check(
            host, watch, [text, name] + [u[2] for u in upcoming] + [u[3] for u in upcoming]
        )
        problems[f"overlay, #{qid} on air"] = check(overlay, watch, [text, name])
        if qid in (on_air, zalgo_id):  # the U+202E name, and the combining marks
            suffix = "" if qid == on_air else "-zalgo"
            shoot(host, f"xss-host{suffix}-{lang}")
            shoot(overlay, f"xss-overlay{suffix}-{lang}", omit_background=True)

    mod.close()
    assert {screen: found for screen, found in problems.items() if found} == {}
    for page in (viewer, console, host, overlay):
        assert page.js_errors == []
    assert dialogs == []
