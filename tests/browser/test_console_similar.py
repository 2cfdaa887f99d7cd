"""Similar questions across languages in the console: a Spanish and a Russian question
about one thing, translated by a real worker (the test models), are grouped on the
later card; one key merges it, and its asker follows the kept question's status."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from ..support import SECOND, wait_until, ws_client
from ..workers.conftest import argos_dir, start_worker, worker_settings  # noqa: F401  (fixtures)
from .conftest import shot
from .test_console import open_console

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def ask(viewer: Any, speaker: int, text: str, language: str) -> int:
    payload = {"client_id": uuid.uuid4().hex, "speaker_id": speaker, "text": text, "language": language}
    reply = viewer.request("question.ask", payload)
    assert reply["ok"], reply
    return int(reply["payload"]["question"]["id"])


def test_a_spanish_and_a_russian_question_are_grouped_and_one_key_merges_them(
    server,
    ctx,
    event_id,
    sample,
    new_page,
    start_worker,  # noqa: F811
) -> None:
    worker = start_worker()
    wait_until(lambda: "listening" in worker.output().lower(), 60 * SECOND, "the worker")
    speaker = sample["speakers"]["moscow"][1].id  # the moderators, the speaker and the host read Russian
    page = open_console(new_page, server.base)
    with ws_client(f"{server.ws_base}/ws/viewer") as ana, ws_client(f"{server.ws_base}/ws/viewer") as ivan:
        ana.request("hello")
        ivan.request("hello")
        es = ask(ana, speaker, "¿Exportan a Europa?", "es")
        es_card = page.locator(f"#questions li[data-id='{es}']")
        expect(es_card.locator(".t[data-lang=ru] .ttext")).to_contain_text("Вы экспортируете в Европу?")
        asia = ask(ana, speaker, "Вы экспортируете в Азию?", "ru")
        ru = ask(ivan, speaker, "Экспортируете ли вы в Европу?", "ru")
        ru_card = page.locator(f"#questions li[data-id='{ru}']")
        chips = ru_card.locator(".similar button")
        expect(chips).to_have_text([f"#{es}"], timeout=10_000 * SECOND)  # the worker translated it
        asia_card = page.locator(f"#questions li[data-id='{asia}']")
        expect(asia_card.locator(".tstate")).to_be_visible()  # its card is done ("same language")
        expect(asia_card.locator(".similar")).to_have_count(0)  # "…to Asia?" is another question
        shot(page, "console-similar")
        # A chip shows the question it names.
        chips.first.click()
        expect(es_card).to_have_class(re.compile(r"\bselected\b"))
        # The merge dialog lists the server's suggestion first.
        ru_card.locator(".texts").click()
        page.keyboard.press("m")
        first = page.locator("#merge-suggest li").first
        expect(first).to_have_attribute("data-id", str(es))
        expect(first).to_have_attribute("data-server", "true")
        page.click("#merge-cancel")
        # One key merges the selected question into its first suggestion, with Undo.
        page.keyboard.press("d")
        expect(ru_card).to_have_attribute("data-status", "merged")
        expect(page.locator("#toast")).to_contain_text(f"Question #{ru} merged into #{es}.")
        expect(page.locator("#toast-undo")).to_be_visible()
        expect(es_card.locator(".chip", has_text="merged")).to_have_text("+1 merged")
        merged = ivan.wait_event(
            lambda e: e["type"] == "question.updated" and e["payload"]["id"] == ru and e["payload"]["merged"]
        )
        assert merged["payload"]["status"] == "received"
        # The kept question is approved: Ivan's merged question follows it.
        es_card.locator(".texts").click()
        page.keyboard.press("a")
        expect(es_card).to_have_attribute("data-status", "queued")
        followed = ivan.wait_event(lambda e: e["payload"].get("id") == ru and e["payload"].get("status") == "approved")
        assert followed["payload"]["merged"] is True
        # With no open suggestion left, the key says so and merges nothing.
        asia_card.locator(".texts").click()
        page.keyboard.press("d")
        expect(page.locator("#toast")).to_contain_text(f"Question #{asia}: no similar open question")
        expect(asia_card).to_have_attribute("data-status", "pending")
    assert page.js_errors == []
