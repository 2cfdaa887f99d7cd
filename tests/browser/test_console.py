"""The moderation console in real headless Chromium."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from qa_service.db.models import Question
from qa_service.services import questions

from ..conftest import MOD_PASSWORD
from ..support import start_server, ws_client
from .conftest import doc_shot, shot

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def open_console(new_page: Any, base: str, username: str = "mod1") -> Any:
    page = new_page()
    page.goto(base + "/moderate")
    page.fill("#login-user", username)
    page.fill("#login-pass", MOD_PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    return page


def ask(ctx: Any, event_id: int, speaker_id: int, text: str, language: str = "en") -> int:
    payload = {"client_id": uuid.uuid4().hex, "speaker_id": speaker_id, "text": text, "language": language}
    return int(questions.ask(ctx, event_id, "viewer-0001", payload).question["id"])


def test_login_live_question_approve_into_queue(server, ctx, sample, new_page) -> None:
    page = new_page()
    page.goto(server.base + "/moderate")
    page.fill("#login-user", "mod1")
    page.fill("#login-pass", "wrong-password")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("wrong username or password")
    page.fill("#login-pass", MOD_PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    speaker = sample["speakers"]["moscow"][1]
    with ws_client(f"{server.ws_base}/ws/viewer") as viewer:
        viewer.request("hello")
        reply = viewer.request(
            "question.ask",
            {
                "client_id": uuid.uuid4().hex,
                "speaker_id": speaker.id,
                "text": "How many people work at the factory?",
                "language": "en",
            },
        )
        qid = reply["payload"]["question"]["id"]
    card = page.locator(f"#questions li[data-id='{qid}']")
    expect(card).to_contain_text("How many people work at the factory?")
    expect(card).to_have_attribute("data-status", "pending")
    expect(page.locator("#counts [data-status=pending] b")).to_have_text("1")
    shot(page, "console-pending")
    card.click()
    page.keyboard.press("a")
    expect(card).to_have_attribute("data-status", "queued")
    expect(page.locator(f"#queue li[data-id='{qid}']")).to_contain_text("How many people work at the factory?")
    shot(page, "console-queued")
    page.click("#logout-btn")
    expect(page.locator("#login")).to_be_visible()
    assert page.js_errors == []


def test_two_moderators_one_question_the_loser_is_told(server, ctx, event_id, sample, new_page) -> None:
    qid = ask(ctx, event_id, sample["speakers"]["moscow"][1].id, "Do you export to Europe?")
    alice = open_console(new_page, server.base, "mod1")
    bob = open_console(new_page, server.base, "mod2")
    a_card, b_card = (p.locator(f"#questions li[data-id='{qid}']") for p in (alice, bob))
    expect(b_card).to_be_visible()
    b_card.locator("button", has_text="Reject").click()  # Bob starts rejecting…
    a_card.locator("button", has_text="Approve").click()  # …while Alice approves.
    expect(a_card).to_have_attribute("data-status", "queued")
    expect(b_card).to_have_attribute("data-status", "queued")  # Bob sees Alice's action live
    bob.click("#reject-ok")
    expect(bob.locator("#toast")).to_contain_text("another moderator acted on it first")
    expect(b_card).to_have_attribute("data-status", "queued")
    shot(bob, "console-conflict")
    with ctx.transaction() as (db, _):
        assert db.get(Question, qid).status == "queued"


def test_reorder_the_queue_by_keyboard(server, ctx, event_id, sample, new_page) -> None:
    speaker = sample["speakers"]["moscow"][1].id
    ids = [ask(ctx, event_id, speaker, text) for text in ("First?", "Second?", "Third?")]
    for qid in ids:
        questions.moderate(ctx, event_id, qid, "approve", "mod2", expected_version=1)
    page = open_console(new_page, server.base)
    page.select_option("#q-studio", str(sample["studios"]["moscow"].id))
    items = page.locator("#queue li")
    expect(items).to_have_count(3)
    page.locator(f"#queue li[data-id='{ids[2]}']").focus()
    page.keyboard.press("Alt+ArrowUp")
    expect(items.first).to_have_attribute("data-id", str(ids[0]))
    expect(items.nth(1)).to_have_attribute("data-id", str(ids[2]))
    page.keyboard.press("Alt+ArrowUp")
    expect(items.first).to_have_attribute("data-id", str(ids[2]))
    with ctx.transaction() as (db, _):
        order = [
            q.id for q in db.exec(select(Question).where(Question.status == "queued").order_by(Question.queue_position))
        ]  # type: ignore[arg-type]
    assert order == [ids[2], ids[0], ids[1]]
    page.keyboard.press("Delete")
    expect(items).to_have_count(2)


def test_html_in_questions_is_shown_as_text_and_runs_nothing(server, ctx, event_id, sample, new_page) -> None:
    evil = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    qid = ask(ctx, event_id, sample["speakers"]["moscow"][1].id, evil)
    page = open_console(new_page, server.base)
    card = page.locator(f"#questions li[data-id='{qid}']")
    expect(card.locator(".original")).to_contain_text(evil)
    assert card.locator("img, script").count() == 0
    assert page.evaluate("window.pwned") is None


def test_edit_translation_inline_help_overlay_and_audit_log(server, ctx, event_id, sample, new_page) -> None:
    qid = ask(ctx, event_id, sample["speakers"]["moscow"][1].id, "What does one ton of steel cost?")
    page = open_console(new_page, server.base)
    page.locator(f"#questions li[data-id='{qid}']").click()
    page.keyboard.press("e")
    area = page.locator(f"#questions li[data-id='{qid}'] textarea")
    expect(area).to_be_focused()
    area.fill("Сколько стоит тонна стали?")
    page.locator(f"#questions li[data-id='{qid}'] button", has_text="Save").click()
    expect(page.locator(f"#questions li[data-id='{qid}'] [data-lang=ru]")).to_contain_text("edited by mod1")
    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()
    shot(page, "console-help")
    page.keyboard.press("Escape")
    page.click("#audit-btn")
    row = page.locator("#audit-rows tr").first
    expect(row).to_contain_text("edit_translation")
    expect(row).to_contain_text("mod1")
    expect(row).to_contain_text(f"#{qid}")


def test_two_moderators_triage_fifty_questions_in_five_languages(settings_factory, event_id, sample, new_page) -> None:
    """Every action shows on the other console and on the host display within a second."""
    import csv

    from qa_service.security import Signer

    from ..support import SECOND, wait_until

    settings = settings_factory(questions_per_minute=1000, messages_per_second=200)
    server = start_server(settings)
    try:
        with open("workers/test_models/phrases.tsv", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))[:10]
        texts = [(lang, r[lang]) for lang in ("en", "ru", "es", "de") for r in rows]
        texts += [("ar", f"ما هي خطة المصنع رقم {i}؟") for i in range(10)]
        studio = sample["studios"]["moscow"]
        speaker = sample["speakers"]["moscow"][1].id
        alice = open_console(new_page, server.base, "mod1")
        bob = open_console(new_page, server.base, "mod2")
        host = new_page()
        host.goto(server.base + f"/host/{Signer(settings.secret_key).host_token(studio.id, studio.host_token_version)}")
        expect(host.locator("#conn")).to_have_attribute("data-state", "live")
        for page in (alice, bob):
            page.select_option("#f-status", "pending")
        with ws_client(f"{server.ws_base}/ws/viewer") as viewer:
            viewer.request("hello")
            for lang, text in texts:
                payload = {"client_id": uuid.uuid4().hex, "speaker_id": speaker, "text": text, "language": lang}
                assert viewer.request("question.ask", payload)["ok"]
        one_second = 1000 * SECOND
        for page in (alice, bob):
            expect(page.locator("#counts [data-status=pending] b")).to_have_text("50", timeout=one_second)
        assert set(alice.locator("#questions .lang").all_inner_texts()) == {"EN", "RU", "ES", "DE", "AR"}
        approved = 0
        for i in range(50):
            actor, other = (alice, bob) if i % 2 == 0 else (bob, alice)
            first = actor.locator("#questions li:not(.left)").first  # a card that just left stays, dimmed
            qid = first.get_attribute("data-id")
            first.click()
            if actor is alice:
                actor.keyboard.press("a")
                approved += 1
                wait_until(lambda q=qid: host.evaluate(f"state.questions.has({q})"), SECOND, "the host display")
            else:
                actor.keyboard.press("r")
                actor.click("#reject-ok")
            expect(other.locator("#counts [data-status=pending] b")).to_have_text(str(49 - i), timeout=one_second)
        for page in (alice, bob):
            expect(page.locator("#counts [data-status=queued] b")).to_have_text(str(approved), timeout=one_second)
            expect(page.locator("#counts [data-status=rejected] b")).to_have_text(
                str(50 - approved), timeout=one_second
            )
        assert host.evaluate("state.questions.size") == approved == 25
        expect(host.locator("#next li")).to_have_count(3)
        shot(alice, "console-after-triage")
        for page in (alice, bob, host):
            assert page.js_errors == []
    finally:
        server.stop()


def status_of(ctx: Any, qid: int) -> str:
    with ctx.read() as db:
        q = db.get(Question, qid)
        assert q is not None
        return q.status


def test_a_question_removed_from_the_queue_is_queued_again_and_put_on_air_now(
    server, ctx, event_id, sample, new_page
) -> None:
    speaker = sample["speakers"]["moscow"][1].id
    first, second = (ask(ctx, event_id, speaker, text) for text in ("Wages?", "Exports?"))
    for qid in (first, second):
        questions.moderate(ctx, event_id, qid, "approve", "mod2", expected_version=1)
    page = open_console(new_page, server.base)
    page.select_option("#q-studio", str(sample["studios"]["moscow"].id))
    card = page.locator(f"#questions li[data-id='{first}']")
    page.locator(f"#queue li[data-id='{first}'] button", has_text="Remove from queue").click()
    expect(card).to_have_attribute("data-status", "approved")
    expect(page.locator(f"#queue li[data-id='{first}']")).to_have_count(0)
    card.locator("button", has_text="Queue (q)").click()
    expect(card).to_have_attribute("data-status", "queued")
    expect(page.locator("#queue li").last).to_have_attribute("data-id", str(first))  # back at the tail
    assert status_of(ctx, first) == "queued"
    # Removed again, then straight on air from the card, by key.
    page.locator(f"#queue li[data-id='{first}'] button", has_text="Remove from queue").click()
    expect(card).to_have_attribute("data-status", "approved")
    card.locator(".texts").click()
    page.keyboard.press("o")
    expect(card).to_have_attribute("data-status", "on_air")
    expect(page.locator("#queue li").first).to_have_attribute("data-id", str(first))
    assert status_of(ctx, first) == "on_air" and status_of(ctx, second) == "queued"
    assert page.js_errors == []


def test_reject_stays_in_place_with_an_undo_toast(server, ctx, event_id, sample, new_page) -> None:
    speaker = sample["speakers"]["moscow"][1].id
    ids = [ask(ctx, event_id, speaker, f"Question number {i}?") for i in range(3)]
    page = open_console(new_page, server.base)
    page.select_option("#f-status", "pending")
    card = page.locator(f"#questions li[data-id='{ids[1]}']")
    card.locator("button", has_text="Reject (r)").click()
    page.click("#reject-ok")
    expect(card).to_have_attribute("data-status", "rejected")
    expect(card).to_have_class(re.compile(r"\bleft\b"))  # still where it was, dimmed
    expect(page.locator("#questions li").nth(1)).to_have_attribute("data-id", str(ids[1]))
    expect(page.locator("#toast")).to_contain_text(f"Question #{ids[1]} rejected.")
    shot(page, "console-reject-undo")
    page.click("#toast-undo")
    expect(card).to_have_attribute("data-status", "pending")
    expect(card).not_to_have_class(re.compile(r"\bleft\b"))
    assert status_of(ctx, ids[1]) == "pending"
    # Rejected again by key; j and k step over it in place; once the moderator is idle
    # (pointer off the list) it is swept and the selection moves to the card in its place.
    card.locator(".texts").click()
    page.keyboard.press("r")
    page.click("#reject-ok")
    expect(card).to_have_attribute("data-status", "rejected")
    page.keyboard.press("j")
    assert page.evaluate("state.selected") == ids[2]
    page.keyboard.press("k")
    assert page.evaluate("state.selected") == ids[1]
    page.mouse.move(5, 5)  # off the list
    expect(card).to_have_count(0, timeout=10_000)
    expect(page.locator("#questions li")).to_have_count(2)
    assert page.evaluate("state.selected") == ids[2]
    expect(page.locator(f"#questions li[data-id='{ids[2]}']")).to_have_class(re.compile(r"\bselected\b"))
    assert page.js_errors == []


def test_merge_by_drag_and_from_suggested_similar_questions(server, ctx, event_id, sample, new_page) -> None:
    speaker = sample["speakers"]["moscow"][1].id
    keep = ask(ctx, event_id, speaker, "How many people work at the factory?")
    dup = ask(ctx, event_id, speaker, "How many people work at your factory?")
    other = ask(ctx, event_id, speaker, "When does the new rolling mill open?")
    dup2 = ask(ctx, event_id, speaker, "How many people work in the factory today?")
    page = open_console(new_page, server.base)
    kept = page.locator(f"#questions li[data-id='{keep}']")
    page.drag_and_drop(f"#questions li[data-id='{dup}'] .grip", f"#questions li[data-id='{keep}'] .texts")
    expect(page.locator(f"#questions li[data-id='{dup}']")).to_have_attribute("data-status", "merged")
    expect(page.locator("#toast")).to_contain_text(f"Question #{dup} merged into #{keep}.")
    expect(kept.locator(".chip")).to_have_text("+1 merged")
    # The dialog offers the similar questions first, not the unrelated one.
    page.locator(f"#questions li[data-id='{dup2}'] .texts").click()
    page.keyboard.press("m")
    suggestions = page.locator("#merge-suggest li")
    expect(suggestions.first).to_have_attribute("data-id", str(keep))
    assert str(other) not in suggestions.evaluate_all("(lis) => lis.map((li) => li.dataset.id)")
    doc_shot(page, "console-merge")
    suggestions.first.locator("button").click()
    expect(page.locator(f"#questions li[data-id='{dup2}']")).to_have_attribute("data-status", "merged")
    expect(kept.locator(".chip")).to_have_text("+2 merged")
    with ctx.read() as db:
        assert {db.get(Question, i).merged_into_id for i in (dup, dup2)} == {keep}  # type: ignore[union-attr]
    assert page.js_errors == []


def test_compact_density_fits_twice_the_cards_and_the_console_speaks_arabic(
    server, ctx, event_id, sample, new_page
) -> None:
    speaker = sample["speakers"]["moscow"][1].id
    for i in range(40):
        ask(ctx, event_id, speaker, f"Question {i}: what will the plant produce next year, and for whom?")
    page = open_console(new_page, server.base)
    page.set_viewport_size({"width": 1366, "height": 1000})
    expect(page.locator("#questions li")).to_have_count(40)
    count = "() => [...document.querySelectorAll('#questions li')].filter((li) => li.getBoundingClientRect().bottom <= innerHeight).length"
    comfortable = page.evaluate(count)
    page.click("#density-btn")
    compact = page.evaluate(count)
    assert compact >= 12 and compact >= 2 * comfortable - 1, (comfortable, compact)
    page.select_option("#ui-lang", "ar")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("#logout-btn")).not_to_have_text("Log out")
    doc_shot(page, "console-compact-ar")
    page.reload()  # the choice is remembered
    expect(page.locator("html")).to_have_attribute("lang", "ar")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    page.select_option("#ui-lang", "zh")
    expect(page.locator("#counts [data-status=pending]")).to_contain_text("待审核")
    page.click("#density-btn")  # back to comfortable
    doc_shot(page, "console-zh")
    assert page.js_errors == []


def test_hide_asker_has_an_undo_and_bulk_approve_too(server, ctx, event_id, sample, new_page) -> None:
    from qa_service.db.models import Ban

    speaker = sample["speakers"]["moscow"][1].id
    ids = [ask(ctx, event_id, speaker, f"Bulk question {i}?") for i in range(3)]
    page = open_console(new_page, server.base)
    card = page.locator(f"#questions li[data-id='{ids[0]}']")
    card.locator(".more summary").click()
    card.locator("button", has_text="Hide asker").click()  # no blocking confirm: the toast undoes it
    expect(page.locator("#toast")).to_contain_text(f"The asker of #{ids[0]} is hidden from now on.")
    with ctx.read() as db:
        assert len(db.exec(select(Ban)).all()) == 1
    page.click("#toast-undo")
    expect(page.locator("#toast")).to_contain_text(f"The asker of #{ids[0]} is no longer hidden.")
    with ctx.read() as db:
        assert db.exec(select(Ban)).all() == []
    for qid in ids[1:]:
        page.locator(f"#questions li[data-id='{qid}'] input.pick").check()
    page.click("#bulk-approve")
    expect(page.locator("#toast")).to_contain_text("2 questions approved.")
    for qid in ids[1:]:
        expect(page.locator(f"#questions li[data-id='{qid}']")).to_have_attribute("data-status", "queued")
    page.click("#toast-undo")
    for qid in ids[1:]:
        expect(page.locator(f"#questions li[data-id='{qid}']")).to_have_attribute("data-status", "pending")
        assert status_of(ctx, qid) == "pending"
    assert page.js_errors == []


def test_buttons_act_on_the_version_the_card_shows_after_another_moderators_edit(
    server, ctx, event_id, sample, new_page
) -> None:
    qid = ask(ctx, event_id, sample["speakers"]["moscow"][1].id, "Do you hire engineers from abroad?")
    page = open_console(new_page, server.base)
    card = page.locator(f"#questions li[data-id='{qid}']")
    expect(card).to_have_attribute("data-version", "1")
    questions.edit_translation(
        ctx, event_id, qid, "ru", "Нанимаете ли вы инженеров из-за рубежа?", "mod2", expected_version=1
    )
    expect(card).to_have_attribute("data-version", "2")  # same status: the buttons were not rebuilt
    expect(card.locator("[data-lang=ru]")).to_contain_text("edited by mod2")
    card.locator("button", has_text="Approve (a)").click()
    expect(card).to_have_attribute("data-status", "queued")
    expect(page.locator("#toast")).to_be_hidden()
    assert status_of(ctx, qid) == "queued"
    assert page.js_errors == []
