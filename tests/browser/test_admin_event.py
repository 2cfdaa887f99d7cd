"""The event edited live on /admin: an admin adds a speaker to the live segment and the
viewer page, the host display and the console beside it show the speaker at once."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from qa_service.security import Signer
from qa_service.services.accounts import add_user

from ..conftest import MOD_PASSWORD
from .conftest import doc_shot

pytestmark = [pytest.mark.browser, pytest.mark.integration]
WIDE = {"width": 1280, "height": 900}


def log_in(page: Any, base: str, path: str, username: str) -> None:
    page.goto(base + path)
    page.fill("#login-user", username)
    page.fill("#login-pass", MOD_PASSWORD)
    page.click("#login-form button[type=submit]")


def open_admin(new_page: Any, base: str, locale: str = "en-US") -> Any:
    page = new_page(locale=locale, viewport=WIDE)
    log_in(page, base, "/admin", "admin1")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    return page


def test_an_admin_adds_a_speaker_to_the_live_segment_and_everyone_sees_it(
    server, settings, ctx, sample, new_page
) -> None:
    add_user(ctx, "admin1", MOD_PASSWORD, "admin")
    moscow = sample["studios"]["moscow"]
    live = sample["segments"][moscow.id]

    viewer = new_page(viewport={"width": 390, "height": 844})
    viewer.goto(server.base + "/")
    expect(viewer.locator("#conn")).to_have_attribute("data-state", "live")
    host = new_page()
    host.goto(server.base + f"/host/{Signer(settings.secret_key).host_token(moscow.id, moscow.host_token_version)}")
    expect(host.locator("#conn")).to_have_attribute("data-state", "live")
    console = new_page()
    log_in(console, server.base, "/moderate", "mod1")
    expect(console.locator("#conn")).to_have_attribute("data-state", "live")
    expect(console.locator("#admin-link")).to_be_hidden()  # a moderator has no link to /admin

    admin = open_admin(new_page, server.base)
    segment = admin.locator(f"#segments > li[data-id='{live.id}']")
    expect(segment).to_have_attribute("data-status", "live")
    expect(segment.locator(".speaker")).to_have_count(2)
    # Keyboard only: focus "Add a speaker", Enter, type, Tab, Enter saves.
    segment.locator(".add-speaker").focus()
    admin.keyboard.press("Enter")
    expect(admin.locator("#f-name")).to_be_focused()
    admin.keyboard.type("Mei Ling")
    admin.keyboard.press("Tab")
    admin.keyboard.type("Chief Analyst")
    admin.keyboard.press("Tab")
    admin.keyboard.type("Yangtze Research")
    admin.keyboard.press("Tab")
    admin.keyboard.type("zh, en")
    admin.keyboard.press("Enter")
    expect(segment.locator(".speaker")).to_have_count(3)
    expect(segment.locator(".speaker").last).to_contain_text("Mei Ling")
    expect(admin.locator("#notice")).to_be_visible()

    # Without a reload: the viewer can pick her, the host display names her, the console filters by her.
    expect(viewer.locator(".speaker", has_text="Mei Ling")).to_be_visible()
    expect(viewer.locator(".speaker", has_text="Mei Ling")).to_contain_text("Chief Analyst, Yangtze Research")
    expect(host.locator("#speakers")).to_contain_text("Mei Ling")
    expect(console.locator("#f-speaker option", has_text="Mei Ling")).to_have_count(1)
    assert viewer.evaluate("performance.getEntriesByType('navigation').length") == 1

    # Edit in place: the segment's title, times in the studio's time zone; Escape cancels another form.
    segment.locator(".acts button", has_text="Edit").first.click()
    admin.fill("#f-title", "Opening: industry after the energy transition (extended)")
    admin.keyboard.press("Enter")
    expect(viewer.locator("#schedule")).to_contain_text("(extended)")
    expect(host.locator("#speakers")).to_contain_text("Mei Ling")
    admin.locator("#add-studio").click()
    expect(admin.locator("#f-slug")).to_be_focused()
    admin.keyboard.press("Escape")
    expect(admin.locator("#f-slug")).to_have_count(0)

    # A speaker with questions cannot be deleted: the button says why.
    dmitry = sample["speakers"]["moscow"][1]
    viewer.locator(f".speaker[data-id='{dmitry.id}']").click()
    viewer.fill("#q-text", "Will Uralmash export turbines?")
    viewer.click("#send")
    expect(viewer.locator("#mine li").first).to_have_attribute("data-status", "received")
    row = admin.locator(f".speaker[data-id='{dmitry.id}']")
    expect(row.locator("button.danger")).to_be_disabled()
    expect(row).to_contain_text("1 question(s)")
    segment.scroll_into_view_if_needed()
    admin.evaluate("window.scrollTo(0, 0)")
    doc_shot(admin, "admin-event")

    # Ended by hand from the admin page: every screen hears it.
    segment.locator("button", has_text="End").click()
    expect(segment).to_have_attribute("data-status", "ended")
    expect(viewer.locator(".speaker", has_text="Mei Ling")).to_have_count(0)
    for page in (viewer, host, console, admin):
        assert page.js_errors == []


def test_the_admin_page_in_arabic_and_a_moderator_is_turned_away(server, ctx, sample, new_page) -> None:
    add_user(ctx, "admin1", MOD_PASSWORD, "admin")
    admin = open_admin(new_page, server.base, locale="ar-EG")
    expect(admin.locator("html")).to_have_attribute("dir", "rtl")
    expect(admin.locator("#studios-h")).to_have_text("الاستوديوهات")
    live = sample["segments"][sample["studios"]["moscow"].id]
    admin.locator(f"#segments > li[data-id='{live.id}'] .add-speaker").click()
    expect(admin.locator("#f-name")).to_be_focused()
    admin.fill("#f-name", "عمر")
    admin.fill("#f-languages", "english")
    admin.keyboard.press("Enter")
    expect(admin.locator("form.edit .error")).to_be_visible()
    expect(admin.locator("#f-languages")).to_have_attribute("aria-invalid", "true")
    doc_shot(admin, "admin-event-ar")
    assert admin.js_errors == []

    moderator = new_page()
    log_in(moderator, server.base, "/admin", "mod1")
    expect(moderator.locator("#forbidden")).to_be_visible()
    expect(moderator.locator("#forbidden h1")).to_have_text("Admins only")
    expect(moderator.locator("#app")).to_be_hidden()


def test_the_console_links_admins_to_the_event_page(server, ctx, new_page) -> None:
    add_user(ctx, "admin1", MOD_PASSWORD, "admin")
    page = new_page()
    log_in(page, server.base, "/moderate", "admin1")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#admin-link")).to_be_visible()
    page.locator("#admin-link button").click()
    expect(page).to_have_url(re.compile(r"/admin\??$"))
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
