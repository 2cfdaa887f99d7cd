"""Who is asking, in Chromium: the event's company field and the offer of an answer by
e-mail on the ask form; the company reaches the console and the host line, the address
reaches neither (only the speaker team's export)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from qa_service.db.models import Question

from .conftest import doc_shot
from .test_console import open_console
from .test_host import host_url

pytestmark = [pytest.mark.browser, pytest.mark.integration]
PHONE = {"width": 390, "height": 844}


def _stored(ctx: Any, text: str) -> list[Question]:
    with ctx.read() as db:
        return list(db.exec(select(Question).where(Question.text == text)))


def test_company_and_consented_contact_go_with_the_question(server, settings, ctx, sample, moderator, new_page) -> None:
    viewer = new_page(locale="de-DE", viewport=PHONE)
    viewer.goto(server.base + "/")
    expect(viewer.locator("#conn")).to_have_attribute("data-state", "live")
    expect(viewer.locator("label[for=f-company]")).to_have_text("Firma (optional)")
    expect(viewer.locator("#contact-fields")).to_be_hidden()
    viewer.fill("#q-text", "Exportieren Sie nach Europa?")
    viewer.fill("#q-name", "Jonas")
    viewer.fill("#f-company", "Zwilling Sensorik")
    viewer.check("#want-answer")
    expect(viewer.locator("#consent-text")).to_contain_text("30 Tage")
    viewer.fill("#q-email", "jonas@example.org")
    # No consent, no address: a clear word, nothing sent.
    viewer.click("#send")
    expect(viewer.locator("#form-error")).to_contain_text("Häkchen")
    assert _stored(ctx, "Exportieren Sie nach Europa?") == []
    viewer.check("#q-consent")
    doc_shot(viewer, "viewer-contact-de")
    viewer.click("#send")
    expect(viewer.locator("#mine li[data-status=received]")).to_have_count(1)
    (q,) = _stored(ctx, "Exportieren Sie nach Europa?")
    assert (q.asker_fields, q.contact_email) == ({"company": "Zwilling Sensorik"}, "jonas@example.org")
    # Consent is per question: the box is clear again; the company is remembered.
    expect(viewer.locator("#want-answer")).not_to_be_checked()
    viewer.reload()
    expect(viewer.locator("#f-company")).to_have_value("Zwilling Sensorik")

    console = open_console(new_page, server.base)
    card = console.locator(f"#questions li[data-id='{q.id}']")
    expect(card.locator(".field")).to_have_text("Zwilling Sensorik")
    expect(card.locator(".chip.contact")).to_be_visible()
    assert "jonas@example.org" not in console.content()

    assert moderator.post(f"/api/questions/{q.id}/approve", json={"version": q.version}).status_code == 200
    host = new_page(viewport={"width": 1920, "height": 1080})
    host.goto(host_url(server, settings, sample["studios"]["moscow"]))
    expect(host.locator(f"#next li[data-id='{q.id}'] .who")).to_contain_text("Zwilling Sensorik")
    assert "jonas@example.org" not in host.content()
    assert not viewer.js_errors and not console.js_errors and not host.js_errors
