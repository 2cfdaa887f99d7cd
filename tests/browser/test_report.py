"""The report page in real headless Chromium: every chart drawn from /api/report's
numbers (Chart.js's own data compared with the API, and pixels on every canvas), in
English and in Arabic (mirrored), printable on A4; screenshots for the docs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from ..conftest import MOD_PASSWORD
from ..report_data import XSS, populate
from .conftest import ARTIFACTS, doc_shot, shot
from .test_console import open_console

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHARTS = [
    "chart-timeline",
    "chart-funnel",
    "chart-air",
    "chart-studios",
    "chart-languages",
    "chart-speakers",
    "chart-countries",
    "chart-workload",
    "chart-hours",
]

# Every chart's datasets as plain numbers, and how many pixels of its canvas are painted.
CHART_STATE = """ids => Object.fromEntries(ids.map((id) => {
  const canvas = document.getElementById(id);
  const chart = Chart.getChart(canvas);
  const ctx = canvas.getContext("2d");
  const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < px.length; i += 4) if (px[i] > 0) painted++;
  return [id, {
    type: chart && chart.config.type,
    labels: chart ? chart.data.labels.map(String) : [],
    data: chart ? chart.data.datasets.map((d) => d.data) : [],
    reverse: chart ? Boolean(chart.options.scales && chart.options.scales.x && chart.options.scales.x.reverse) : null,
    painted, pixels: canvas.width * canvas.height, width: canvas.getBoundingClientRect().width,
  }];
}))"""


def open_report(
    new_page: Any, base: str, *, lang: str = "en", viewport: dict[str, int] | None = None, install_clock: bool = False
) -> Any:
    page = new_page(viewport=viewport or {"width": 1366, "height": 900})
    if install_clock:
        page.clock.install()
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text) if m.type in ("error", "warning") else None)
    page.console_messages = messages
    page.goto(f"{base}/report?lang={lang}")
    expect(page.locator("#login")).to_be_visible()  # the console's login: one session for both
    page.fill("#login-user", "mod1")
    page.fill("#login-pass", MOD_PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#app")).to_be_visible()
    page.wait_for_function("ids => ids.every((id) => Chart.getChart(document.getElementById(id)))", arg=CHARTS)
    return page


def api_report(page: Any) -> dict[str, Any]:
    return page.evaluate("fetch('/api/report').then((r) => r.json())")  # type: ignore[no-any-return]


def full_height(page: Any, width: int) -> None:
    """Make the viewport as tall as the page, for a screenshot of all of it."""
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_timeout(150)  # Chart.js resizes on its ResizeObserver's next frame


def check_charts_match(page: Any, r: dict[str, Any]) -> dict[str, Any]:
    charts = page.evaluate(CHART_STATE, CHARTS)
    for name, c in charts.items():
        assert c["type"], name
        assert c["painted"] > c["pixels"] * 0.01, f"{name} is (nearly) blank"
    f = r["funnel"]
    assert charts["chart-funnel"]["data"] == [[f["asked"], f["approved"], f["on_air"], f["answered"]]]
    assert charts["chart-studios"]["data"] == [[s["count"] for s in r["studios"]]]
    assert charts["chart-air"]["data"] == [[b["count"] for b in r["time_to_air"]["histogram"]]]
    langs = [i["count"] for i in r["languages"]["items"]] + (
        [r["languages"]["other"]] if r["languages"]["other"] else []
    )
    assert charts["chart-languages"]["data"] == [langs]
    countries = [i["count"] for i in r["countries"]["items"]]
    countries += [x for x in (r["countries"]["other"], r["countries"]["unknown"]) if x]
    assert charts["chart-countries"]["data"] == [countries]
    speakers = [s["count"] for s in r["speakers"]["items"] if s["count"]]
    speakers += [r["speakers"]["other"]] if r["speakers"]["other"] else []
    assert charts["chart-speakers"]["data"] == [speakers]
    assert charts["chart-timeline"]["data"] == [s["counts"] for s in r["timeline"]["studios"]]
    assert len(charts["chart-timeline"]["labels"]) == len(r["timeline"]["labels"])
    w = r["workload"]
    assert charts["chart-workload"]["data"] == [[m["by_kind"][k] for m in w["moderators"]] for k in w["kinds"]]
    assert charts["chart-hours"]["data"] == [m["counts"] for m in w["per_hour"]["moderators"]]
    return charts


def test_every_chart_is_drawn_from_the_report(server, ctx, event_id, sample, new_page) -> None:
    populate(ctx, event_id, sample)
    page = open_report(new_page, server.base)
    r = api_report(page)
    assert r["totals"]["questions"] == 240 and r["funnel"]["answered"] > 0 and r["most_voted"]
    charts = check_charts_match(page, r)
    assert charts["chart-funnel"]["labels"] == ["Asked", "Approved", "On air", "Answered"]
    assert charts["chart-timeline"]["reverse"] is False
    expect(page.locator("#stat-questions")).to_have_text("240")
    expect(page.locator("#event-name")).to_have_text(r["event"]["name"])

    # The audience's favourites: their own text, as text, each isolated.
    voted = page.locator("#voted li")
    expect(voted).to_have_count(len(r["most_voted"]))
    first = voted.first.locator(".qtext")
    expect(first).to_have_text(r["most_voted"][0]["text"])
    expect(first).to_have_attribute("dir", "auto")
    if any(q["text"] == XSS for q in r["most_voted"]):
        expect(page.locator("#voted", has_text="<img src=x")).to_have_count(1)
    assert page.locator("#voted img, #voted b:not(.votes b)").count() == 0
    assert page.title() != "pwned"

    # Split by language: the same questions, another grouping.
    page.select_option("#timeline-by", "languages")
    by_language = page.evaluate(CHART_STATE, ["chart-timeline"])["chart-timeline"]
    assert by_language["data"] == [s["counts"] for s in r["timeline"]["languages"]]
    page.select_option("#timeline-by", "studios")

    full_height(page, 1366)
    check_charts_match(page, r)  # still drawn after the resize
    doc_shot(page, "report-en")
    assert page.js_errors == []
    assert not [m for m in page.console_messages if "Content Security Policy" in m or "Refused" in m]


def test_refresh_reads_the_report_again(server, ctx, event_id, sample, new_page) -> None:
    """By itself every 30 s while the marathon runs (the page's clock is Playwright's), and on Refresh."""
    populate(ctx, event_id, sample, n=30)
    page = open_report(new_page, server.base, install_clock=True)
    expect(page.locator("#stat-questions")).to_have_text("30")
    expect(page.locator("#mode")).to_have_text("Refreshes every 30 s while the marathon runs")
    populate(ctx, event_id, sample, n=12)
    page.clock.fast_forward(20_000)
    expect(page.locator("#stat-questions")).to_have_text("30")
    page.clock.fast_forward(11_000)
    expect(page.locator("#stat-questions")).to_have_text("42")
    populate(ctx, event_id, sample, n=5)
    page.click("#refresh-btn")
    expect(page.locator("#stat-questions")).to_have_text("47")
    r = api_report(page)
    check_charts_match(page, r)
    assert page.js_errors == []


def test_arabic_right_to_left(server, ctx, event_id, sample, new_page) -> None:
    populate(ctx, event_id, sample)
    page = open_report(new_page, server.base, lang="ar")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    assert page.evaluate("document.documentElement.lang") == "ar"
    expect(page.locator("#print-btn")).to_have_text("طباعة / PDF")
    r = api_report(page)
    charts = check_charts_match(page, r)
    assert charts["chart-funnel"]["labels"] == ["طُرحت", "قُبلت", "على الهواء", "أُجيبت"]
    for name in ("chart-timeline", "chart-funnel", "chart-speakers", "chart-workload"):
        assert charts[name]["reverse"] is True, name  # mirrored
    full_height(page, 1366)
    check_charts_match(page, r)
    doc_shot(page, "report-ar")
    assert page.js_errors == []


def test_print_fits_a4(server, ctx, event_id, sample, new_page) -> None:
    populate(ctx, event_id, sample)
    a4 = round((210 - 2 * 12) * 96 / 25.4)  # A4 less report.css's 12 mm margins, in CSS pixels
    page = open_report(new_page, server.base, viewport={"width": a4, "height": 1000})
    r = api_report(page)
    page.emulate_media(media="print")
    page.wait_for_timeout(200)  # the charts follow their new boxes on the next frame
    for button in ("#print-btn", "#refresh-btn", "#ui-lang", "#timeline-by"):
        expect(page.locator(button)).to_be_hidden()
    charts = check_charts_match(page, r)
    for name, c in charts.items():
        assert c["width"] <= a4, name
    full_height(page, a4)
    doc_shot(page, "report-print")
    pdf = ARTIFACTS.parent / "report.pdf"
    page.pdf(path=str(pdf), format="A4", print_background=True)
    data = Path(pdf).read_bytes()
    assert data.startswith(b"%PDF") and data.count(b"/Type /Page\n") + data.count(b"/Type /Page ") >= 2
    assert page.js_errors == []


def test_opened_from_the_console_with_its_login(server, ctx, event_id, sample, new_page) -> None:
    populate(ctx, event_id, sample, n=20)
    console = open_console(new_page, server.base)
    shot(console, "console-report-button")
    errors: list[str] = []
    console.context.on("page", lambda p: p.on("pageerror", lambda exc: errors.append(str(exc))))
    with console.context.expect_page() as opened:
        console.click("#report-btn")
    page = opened.value
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("#login")).to_be_hidden()
    expect(page.locator("#stat-questions")).to_have_text("20")
    assert page.url.startswith(server.base + "/report")
    assert console.js_errors == [] and errors == []
