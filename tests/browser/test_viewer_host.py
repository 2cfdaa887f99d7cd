"""The viewer page and the host display in a real browser (issue: the journey)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from qa_service.db.models import Question
from qa_service.security import Signer

from .conftest import doc_shot, shot

LOCALES = Path(__file__).resolve().parents[2] / "viewer_ui" / "static" / "locales"

pytestmark = [pytest.mark.browser, pytest.mark.integration]
PHONE = {"width": 390, "height": 844}


def host_path(settings: Any, studio: Any) -> str:
    return f"/host/{Signer(settings.secret_key).host_token(studio.id, studio.host_token_version)}"


def questions_with(ctx: Any, text: str) -> list[Question]:
    with ctx.transaction() as (db, _):
        return list(db.exec(select(Question).where(Question.text == text)))


def test_arabic_viewer_journey_to_the_host_display_and_back(server, settings, ctx, sample, moderator, new_page) -> None:
    viewer = new_page(locale="ar-EG", viewport=PHONE)
    viewer.goto(server.base + "/")
    expect(viewer.locator("#conn")).to_have_attribute("data-state", "live")
    # The locale loads on its own request, possibly after the socket is live: wait for it.
    expect(viewer.locator("html")).to_have_attribute("dir", "rtl")
    expect(viewer.locator("html")).to_have_attribute("lang", "ar")
    assert viewer.evaluate("getComputedStyle(document.body).direction") == "rtl"
    expect(viewer.locator("#send")).to_have_text("إرسال")
    speaker = sample["speakers"]["moscow"][1]
    viewer.locator(f".speaker[data-id='{speaker.id}']").click()
    text = "ما هي خطط التصدير إلى أوروبا؟"
    viewer.fill("#q-text", text)
    viewer.fill("#q-name", "عمر")
    viewer.click("#send")
    item = viewer.locator("#mine li").first
    expect(item).to_have_attribute("data-status", "received")
    expect(item.locator(".badge")).to_have_text("تم الاستلام")
    shot(viewer, "viewer-ar")
    (q,) = questions_with(ctx, text)
    assert q.language == "ar" and q.display_name == "عمر"

    host = new_page()
    host.goto(server.base + host_path(settings, sample["studios"]["moscow"]))
    expect(host.locator("#conn")).to_have_attribute("data-state", "live")
    assert moderator.post(f"/api/questions/{q.id}/approve", json={"version": q.version}).status_code == 200
    expect(host.locator("#next li").first).to_contain_text(text)
    expect(viewer.locator("#mine li").first).to_have_attribute("data-status", "approved")
    host.keyboard.press("n")  # next: on air
    expect(host.locator("#cur-text")).to_have_text(text)
    expect(host.locator("#cur-asker")).to_contain_text("عمر")
    expect(host.locator("#cur-asker")).to_contain_text(
        "(Египет)"
    )  # country from ar-EG, named in Russian (Moscow's host)
    expect(viewer.locator("#mine li").first).to_have_attribute("data-status", "on_air")
    shot(host, "host-display")
    overlay = new_page(viewport={"width": 1280, "height": 720})
    overlay.goto(server.base + host_path(settings, sample["studios"]["moscow"]) + "?overlay=1")
    expect(overlay.locator("#lt-text")).to_have_text(text)
    assert overlay.evaluate("getComputedStyle(document.body).backgroundColor") == "rgba(0, 0, 0, 0)"
    assert overlay.locator(".keys").is_hidden()
    shot(overlay, "host-overlay", transparent=True)  # a PNG with alpha, as OBS composites it
    host.keyboard.press("a")  # answered
    expect(viewer.locator("#mine li").first).to_have_attribute("data-status", "answered")
    expect(viewer.locator("#mine li .badge").first).to_have_text("تمت الإجابة")
    expect(host.locator("#cur-text")).to_have_text("—")
    for page in (viewer, host, overlay):
        assert page.js_errors == []


@pytest.mark.parametrize(
    ("locale", "title"), [("ru-RU", "Вопрос спикеру"), ("zh-CN", "向嘉宾提问"), ("en-GB", "Ask the speaker")]
)
def test_viewer_page_speaks_the_browsers_language(server, sample, new_page, locale: str, title: str) -> None:
    page = new_page(locale=locale, viewport=PHONE)
    page.goto(server.base + "/")
    expect(page.locator("#ask-h")).to_have_text(title)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    assert page.evaluate("document.documentElement.dir") == "ltr"
    shot(page, f"viewer-{locale[:2]}")
    page.select_option("#lang-select", "de")
    expect(page.locator("#ask-h")).to_have_text("Frage an die Sprecher")


def test_errors_are_explained_in_the_viewers_language(server, sample, new_page) -> None:
    page = new_page(locale="es-PE", viewport=PHONE)
    page.goto(server.base + "/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    page.fill("#q-text", "x" * 501)
    expect(page.locator("#counter")).to_have_text("Quedan -1 caracteres")
    page.click("#send")
    expect(page.locator("#form-error")).to_have_text("Tu pregunta es demasiado larga (501/500 caracteres).")


def test_a_question_typed_offline_is_sent_once_on_reconnect(server, settings, ctx, sample, new_page) -> None:

    from ..support import start_server

    page = new_page(viewport=PHONE)
    page.goto(server.base + "/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    server.stop()  # the connection goes down for real
    expect(page.locator("#conn")).to_have_attribute("data-state", re.compile("offline|reconnecting"))
    text = "Typed in a tunnel: do you export to Asia?"
    page.fill("#q-text", text)
    page.click("#send")
    expect(page.locator("#mine li").first).to_have_attribute("data-status", "waiting")
    assert questions_with(ctx, text) == []
    port = int(server.base.rsplit(":", 1)[1])
    again = start_server(settings, port)
    try:
        expect(page.locator("#mine li").first).to_have_attribute("data-status", "received", timeout=20_000)
        expect(page.locator("#mine li")).to_have_count(1)
        page.evaluate("live.ws.close()")  # one more reconnect must not send it again
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        page.reload()  # nor a reload
        expect(page.locator("#mine li")).to_have_count(1)
        expect(page.locator("#mine li").first).to_have_attribute("data-status", "received")
        assert len(questions_with(ctx, text)) == 1
        assert page.evaluate("JSON.parse(localStorage.getItem('qa.outbox'))") == []
    finally:
        again.stop()


def test_viewer_text_never_runs_as_markup(server, settings, ctx, sample, moderator, new_page) -> None:
    page = new_page()
    page.goto(server.base + "/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    evil = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    page.fill("#q-text", evil)
    page.fill("#q-name", "<b>bold</b>")
    page.click("#send")
    expect(page.locator("#mine li").first).to_have_attribute("data-status", "received")
    expect(page.locator("#mine li .text").first).to_have_text(evil)
    (q,) = questions_with(ctx, evil)
    moderator.post(f"/api/questions/{q.id}/approve", json={"version": q.version})
    host = new_page()
    host.goto(server.base + host_path(settings, sample["studios"]["moscow"]))
    expect(host.locator("#next li").first).to_contain_text(evil)
    expect(host.locator("#next li .who").first).to_contain_text("<b>bold</b>")
    for p in (page, host):
        assert p.evaluate("window.pwned") is None
        assert p.locator("#next img, #mine img").count() == 0


@pytest.mark.parametrize("locale", ["en-US", "ar-EG", "zh-CN"])
def test_a_question_refused_while_the_server_recovers_is_kept_and_sent_again(
    server, ctx, sample, new_page, locale: str
) -> None:
    """The server answers service.unavailable (database or Redis away): the page keeps the
    question, says so, and sends it again after retry_after; it is stored once. The reply
    is rewritten in the browser's own socket (Playwright routes the websocket), as the
    server-side behaviour is drilled in tests/test_fault_hub.py. A refused question has
    no question.created either: the first one is dropped (the page would otherwise
    learn from it that the question was stored after all)."""
    refused: list[str] = []
    dropped: list[str] = []

    def route(ws: Any) -> None:
        server_ws = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            msg = json.loads(message)
            if msg.get("type") == "question.created" and not dropped:
                dropped.append(msg["payload"]["client_id"])
                return
            if msg.get("type") == "reply" and msg.get("ok") and "question" in msg.get("payload", {}) and not refused:
                refused.append(msg["id"])
                error = {"code": "service.unavailable", "message": "try again shortly", "details": {"retry_after": 1}}
                ws.send(json.dumps({"type": "reply", "id": msg["id"], "ok": False, "error": error}))
                return
            ws.send(message)

        server_ws.on_message(from_server)
        ws.on_message(lambda message: server_ws.send(message))

    lang = locale.split("-")[0]
    messages = json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))
    page = new_page(locale=locale, viewport=PHONE)
    page.route_web_socket(re.compile(r".*/ws/viewer$"), route)
    page.goto(server.base + "/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    text = f"Thank you for the talk! ({lang})"
    page.fill("#q-text", text)
    page.click("#send")
    expect(page.locator("#form-error")).to_have_text(messages["retrying_soon"])
    shot(page, f"viewer-kept-while-server-recovers-{lang}")
    expect(page.locator("#mine li").first).to_have_attribute("data-status", "received", timeout=20_000)
    expect(page.locator("#form-error")).to_be_hidden()
    expect(page.locator("#mine li")).to_have_count(1)
    assert refused, "the reply was never rewritten: the test did not exercise the refusal"
    assert len(questions_with(ctx, text)) == 1  # the first attempt was stored; the resend found it
    assert page.evaluate("JSON.parse(localStorage.getItem('qa.outbox'))") == []


def locale_strings(lang: str) -> dict[str, str]:
    return json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))


def test_every_locale_has_every_string_of_the_english_one() -> None:
    english = set(locale_strings("en"))
    for path in sorted(LOCALES.glob("*.json")):
        assert set(locale_strings(path.stem)) == english, path.name


@pytest.mark.parametrize("locale", ["en-US", "ar-EG", "zh-CN"])
def test_after_send_a_confirmation_beside_the_button_follows_the_question(
    server, ctx, sample, moderator, new_page, locale: str
) -> None:
    lang = locale.split("-")[0]
    words = locale_strings(lang)
    page = new_page(locale=locale, viewport=PHONE)
    page.goto(server.base + "/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#send")).to_have_text(words["send"])
    for n in range(3):  # earlier questions: the new one lands far below the button
        page.fill("#q-text", f"Earlier question {n} ({lang})")
        page.click("#send")
        expect(page.locator("#mine li")).to_have_count(n + 1)
    asked = {"en": "What will you export next year?", "ar": "ما هي خطط التصدير إلى أوروبا؟", "zh": "明年出口什么产品？"}
    text = asked[lang]
    page.fill("#q-text", text)
    page.click("#send")
    sent = page.locator("#sent")
    expect(sent).to_be_visible()
    expect(sent).to_contain_text(words["sent_received"])
    assert sent.get_attribute("aria-live") == "polite"
    assert sent.evaluate("(node) => node.closest('form') === document.querySelector('#send').form")
    button, box = page.locator("#send").bounding_box(), sent.bounding_box()
    assert button and box
    assert box["y"] + box["height"] <= PHONE["height"], "the confirmation is off screen"
    gap = max(box["y"] - (button["y"] + button["height"]), button["y"] - (box["y"] + box["height"]), 0)
    assert gap < 24, f"the confirmation is {gap}px away from the button"
    doc_shot(page, f"viewer-sent-{lang}")

    (q,) = questions_with(ctx, text)
    assert moderator.post(f"/api/questions/{q.id}/approve", json={"version": q.version}).status_code == 200
    expect(sent).to_contain_text(words["sent_approved"])
    mine = page.locator("#mine li", has_text=text)
    sent.locator("#sent-link").click()
    expect(mine).to_be_focused()
    expect(mine).to_be_in_viewport()
    expect(mine).to_have_attribute("data-status", "approved")
    assert page.js_errors == []


def test_keyboard_focus_stays_on_the_chosen_speaker(server, ctx, sample, moderator, new_page) -> None:
    page = new_page(viewport=PHONE)
    page.goto(server.base + "/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    page.fill("#q-text", "A question whose approval re-renders the page")
    page.click("#send")
    expect(page.locator("#mine li").first).to_have_attribute("data-status", "received")
    first, second = page.locator(".speaker").nth(0), page.locator(".speaker").nth(1)
    second.focus()
    page.keyboard.press("Enter")
    expect(second).to_have_attribute("aria-checked", "true")
    expect(second).to_be_focused()
    (q,) = questions_with(ctx, "A question whose approval re-renders the page")
    moderator.post(f"/api/questions/{q.id}/approve", json={"version": q.version})
    expect(page.locator("#mine li").first).to_have_attribute("data-status", "approved")
    expect(second).to_be_focused()  # an event re-rendered the page: the button is the same one
    page.keyboard.press("Space")
    expect(second).to_be_focused()
    page.keyboard.press("ArrowLeft")  # a radio group: arrows move the choice and the focus
    expect(first).to_have_attribute("aria-checked", "true")
    expect(first).to_be_focused()
    expect(second).to_have_attribute("aria-checked", "false")
    assert [b.get_attribute("tabindex") for b in (first, second)] == ["0", "-1"]  # one tab stop
    second.click()
    expect(second).to_be_focused()
    expect(page.locator("#pick-h")).to_contain_text(second.locator(".name").inner_text())
    assert page.js_errors == []


def test_a_reason_without_words_in_the_locale_is_never_shown_raw(server, ctx, sample, moderator, new_page) -> None:
    words = locale_strings("de")
    page = new_page(locale="de-DE", viewport=PHONE)
    page.goto(server.base + "/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    texts = {"off_topic": "Eine Frage neben dem Thema?", "internal_only_key": "Eine Frage mit internem Grund?"}
    for text in texts.values():
        page.fill("#q-text", text)
        page.click("#send")
        expect(page.locator("#mine li", has_text=text)).to_have_attribute("data-status", "received")
    for reason, text in texts.items():
        (q,) = questions_with(ctx, text)
        r = moderator.post(f"/api/questions/{q.id}/reject", json={"version": q.version, "reason": reason})
        assert r.status_code == 200, r.text
    known = page.locator("#mine li", has_text=texts["off_topic"])
    unknown = page.locator("#mine li", has_text=texts["internal_only_key"])
    for li in (known, unknown):
        expect(li).to_have_attribute("data-status", "not_selected")
    expect(known.locator(".reason")).to_have_text(words["reason"].replace("{reason}", words["reason_off_topic"]))
    expect(unknown).not_to_contain_text("internal_only_key")
    expect(unknown.locator(".reason")).to_have_count(0)
    assert "internal_only_key" not in page.locator("body").inner_text()
    assert page.js_errors == []


def test_a_merged_question_follows_the_one_it_was_merged_into(server, ctx, sample, moderator, new_page) -> None:
    words = locale_strings("fr")
    page = new_page(locale="fr-FR", viewport=PHONE)
    page.goto(server.base + "/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    mine, theirs = "Quel est votre plan d'export ?", "Et votre plan d'exportation ?"
    page.fill("#q-text", mine)
    page.click("#send")
    expect(page.locator("#mine li").first).to_have_attribute("data-status", "received")
    other = new_page(locale="fr-FR", viewport=PHONE)  # another viewer asks much the same
    other.goto(server.base + "/")
    other.fill("#q-text", theirs)
    other.click("#send")
    expect(other.locator("#mine li").first).to_have_attribute("data-status", "received")
    (q,), (target,) = questions_with(ctx, mine), questions_with(ctx, theirs)
    r = moderator.post(f"/api/questions/{q.id}/merge", json={"version": q.version, "into": target.id})
    assert r.status_code == 200, r.text
    item = page.locator("#mine li").first
    expect(item.locator(".merged")).to_be_visible()
    version = target.version
    for action, status in (("approve", "approved"), ("on_air", "on_air"), ("answer", "answered")):
        r = moderator.post(f"/api/questions/{target.id}/{action}", json={"version": version})
        assert r.status_code == 200, r.text
        version = r.json()["version"]
        expect(item).to_have_attribute("data-status", status)
        expect(item.locator(".merged")).to_have_text(words[f"merged_{status}"])
    expect(page.locator("#sent")).to_contain_text(words["merged_answered"])
    expect(other.locator("#mine li").first).to_have_attribute("data-status", "answered")
    assert page.js_errors == []
