"""The public feed in Chromium: two viewers reading different languages see one
approved Spanish question each in their own language (a real worker translates it
through English), vote, and the counts change live on the other viewer's page, the
console and the studio's host display."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from qa_service.services import questions

from ..support import SECOND, wait_until
from ..workers.conftest import argos_dir, phrases, start_worker, worker_settings  # noqa: F401  (fixtures)
from .conftest import doc_shot, shot
from .test_console import open_console
from .test_host import host_url

pytestmark = [pytest.mark.browser, pytest.mark.integration]
PHONE = {"width": 390, "height": 844}


def _viewer(new_page: Any, base: str, locale: str, **kwargs: Any) -> Any:
    page = new_page(locale=locale, **kwargs)
    page.goto(base + "/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("html")).to_have_attribute("lang", locale.split("-")[0])
    return page


def _approved(
    ctx: Any, event_id: int, speaker: int, text: str, language: str, name: str | None = None, moderator: Any = None
) -> int:
    """Asked, then approved (through the server when ``moderator`` is given: its
    after-commit steps, such as queueing the feed's translation, run there)."""
    payload = {"client_id": uuid.uuid4().hex, "speaker_id": speaker, "text": text, "language": language}
    if name:
        payload["display_name"] = name
    qid = int(questions.ask(ctx, event_id, f"viewer-{uuid.uuid4().hex[:8]}", payload).question["id"])
    if moderator is not None:
        assert moderator.post(f"/api/questions/{qid}/approve", json={"version": 1}).status_code == 200
    else:
        questions.moderate(ctx, event_id, qid, "approve", "mod1", expected_version=None)
    return qid


def test_two_viewers_read_one_question_in_their_languages_and_see_each_others_votes(
    server,
    settings,
    ctx,
    event_id,
    sample,
    moderator,
    new_page,
    start_worker,  # noqa: F811
) -> None:
    worker = start_worker()
    wait_until(lambda: "listening" in worker.output().lower(), 60 * SECOND, "the worker")
    row = next(p for p in phrases() if p["en"] == "Do you export to Europe?")
    speaker = sample["speakers"]["moscow"][0]
    ru = _viewer(new_page, server.base, "ru-RU")
    de = _viewer(new_page, server.base, "de-DE")
    host = new_page(viewport={"width": 1920, "height": 1080})
    host.goto(host_url(server, settings, sample["studios"]["moscow"]))
    expect(host.locator("#conn")).to_have_attribute("data-state", "live")
    console = open_console(new_page, server.base)

    qid = _approved(ctx, event_id, speaker.id, row["es"], "es", name="Lucía", moderator=moderator)
    card_votes = console.locator(f"#questions li[data-id='{qid}'] .chip.votes")
    ru_item = ru.locator(f"#feed li[data-id='{qid}']")
    de_item = de.locator(f"#feed li[data-id='{qid}']")
    # Each reads it in their own language, once the worker has made it (es → en → ru / de).
    expect(ru_item.locator(".text")).to_have_text(row["ru"], timeout=30_000 * SECOND)
    expect(de_item.locator(".text")).to_have_text(row["de"], timeout=30_000 * SECOND)
    expect(de_item.locator(".note")).to_have_text("maschinell übersetzt")
    expect(ru_item.locator(".who")).to_have_text("Lucía")

    ru_item.locator(".vote").click()
    expect(ru_item.locator(".vote")).to_have_attribute("aria-pressed", "true")
    expect(ru_item.locator(".count")).to_have_text("1")
    expect(de_item.locator(".count")).to_have_text("1")  # live, from the other viewer
    expect(host.locator(f"#next li[data-id='{qid}'] .votes-tag")).to_contain_text("1")
    expect(card_votes).to_have_text("▲ 1")
    de_item.locator(".vote").click()
    expect(ru_item.locator(".count")).to_have_text("2")
    expect(host.locator(f"#next li[data-id='{qid}'] .votes-tag")).to_contain_text("2")
    expect(card_votes).to_have_text("▲ 2")
    # Taken back: both pages and the host display follow.
    ru_item.locator(".vote").click()
    expect(ru_item.locator(".vote")).to_have_attribute("aria-pressed", "false")
    expect(de_item.locator(".count")).to_have_text("1")
    expect(host.locator(f"#next li[data-id='{qid}'] .votes-tag")).to_contain_text("1")
    expect(card_votes).to_have_text("▲ 1")
    shot(ru, "feed-ru")
    shot(console, "console-votes")
    assert not ru.js_errors and not de.js_errors and not host.js_errors and not console.js_errors


def test_the_console_sorts_by_votes_and_hides_a_question_from_the_feed(server, ctx, event_id, sample, new_page) -> None:
    from qa_service.services import feed

    speaker = sample["speakers"]["moscow"][0].id
    few = _approved(ctx, event_id, speaker, "Who are your main customers?", "en")
    many = _approved(ctx, event_id, speaker, "Are you hiring young specialists?", "en")
    for v in range(3):
        feed.vote(ctx, event_id, f"viewer-{v}", {"question_id": many, "vote": True})
    viewer = _viewer(new_page, server.base, "en-US")
    expect(viewer.locator("#feed li")).to_have_count(2)
    console = open_console(new_page, server.base)
    cards = console.locator("#questions li.card")
    expect(cards).to_have_count(2)
    assert cards.first.get_attribute("data-id") == str(few)  # oldest first
    console.select_option("#f-sort", "votes")
    expect(cards.first).to_have_attribute("data-id", str(many))
    expect(cards.first.locator(".chip.votes")).to_have_text("▲ 3")

    card = console.locator(f"#questions li[data-id='{many}']")
    card.locator("details.more summary").click()
    card.get_by_role("button", name="Hide from the audience feed").click()
    expect(card.locator(".chip.feed-hidden")).to_be_visible()
    expect(card).to_have_attribute("data-status", "queued")  # not rejected
    expect(viewer.locator(f"#feed li[data-id='{many}']")).to_have_count(0)
    expect(console.locator("#toast")).to_contain_text(f"Question #{many} hidden")
    console.click("#toast-undo")
    expect(viewer.locator(f"#feed li[data-id='{many}']")).to_have_count(1)
    expect(card.locator(".chip.feed-hidden")).to_have_count(0)
    assert not viewer.js_errors and not console.js_errors


def test_a_question_without_a_translation_shows_its_original_language_named(
    server, ctx, event_id, sample, new_page
) -> None:
    """No worker runs: the Chinese reader gets the original, marked, and the feed's order works."""
    speaker = sample["speakers"]["moscow"][0].id
    page = _viewer(new_page, server.base, "zh-CN")
    first = _approved(ctx, event_id, speaker, "¿Exportan a Europa?", "es")
    second = _approved(ctx, event_id, speaker, "<script>alert(1)</script> How many robots?", "en")
    item = page.locator(f"#feed li[data-id='{first}']")
    expect(item.locator(".text")).to_have_text("¿Exportan a Europa?")
    expect(item.locator(".note")).to_contain_text("西班牙")  # "原文为西班牙文"
    expect(page.locator(f"#feed li[data-id='{second}'] .text")).to_have_text(
        "<script>alert(1)</script> How many robots?"
    )
    assert page.locator("#feed script").count() == 0
    # Newest first; most voted first once a vote arrives.
    expect(page.locator("#feed li")).to_have_count(2)
    assert page.locator("#feed li").first.get_attribute("data-id") == str(second)
    item.locator(".vote").click()
    expect(item.locator(".count")).to_have_text("1")
    page.click("[data-feed-order=top]")
    expect(page.locator("#feed li").first).to_have_attribute("data-id", str(first))
    assert not page.js_errors


@pytest.mark.parametrize("locale", ["ar-EG", "zh-CN", "en-US"])
def test_feed_screenshots_under_load(server, ctx, event_id, sample, new_page, locale) -> None:
    """Thirty approved questions, some voted: the phone page in Arabic, Chinese and English (docs/screens/)."""
    speaker = sample["speakers"]["moscow"][0].id
    texts = [(p["en"], "en") for p in phrases()] + [
        ("Какие планы на экспорт?", "ru"),
        ("您们在欧洲有工厂吗？", "zh"),
        ("هل تصدرون إلى مصر؟", "ar"),
    ]
    for n, (text, language) in enumerate(texts):
        qid = _approved(ctx, event_id, speaker, text, language, name=f"Viewer {n}")
        for v in range(n % 5):
            from qa_service.services import feed

            feed.vote(ctx, event_id, f"viewer-load-{v}", {"question_id": qid, "vote": True})
    page = _viewer(new_page, server.base, locale, viewport=PHONE)
    expect(page.locator("#feed li")).to_have_count(len(texts))
    page.click("[data-feed-order=top]")
    page.evaluate("document.getElementById('feed-section').scrollIntoView()")
    doc_shot(page, f"viewer-feed-{locale.split('-')[0]}")
    assert not page.js_errors
