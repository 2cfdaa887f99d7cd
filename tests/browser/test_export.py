"""The console's Export dialog in real headless Chromium: mid-event, a moderator
downloads the questions as XLSX, and the file opens in openpyxl with the rows the
database holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from ..export_scenario import EMAIL, FORMULA, mid_event
from .conftest import doc_shot, shot
from .test_console import open_console

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_a_mid_event_export_from_the_console_opens_in_openpyxl(
    server, ctx, event_id, sample, new_page, tmp_path
) -> None:
    scene = mid_event(ctx, event_id, sample)
    page = open_console(new_page, server.base)
    page.select_option("#f-studio", str(scene.moscow))  # the console's filter: the dialog takes it
    page.click("#export-btn")
    dialog = page.locator("#export-dlg")
    expect(dialog).to_be_visible()
    expect(page.locator("#export-studio")).to_have_value(str(scene.moscow))
    expect(page.locator("#export-speaker")).to_have_value("")
    page.select_option("#export-format", "xlsx")
    doc_shot(page, "console-export")
    with page.expect_download() as info:
        page.click("#export-ok")
    download = info.value
    assert download.suggested_filename.startswith("industry-marathon-questions-studio-moscow-")
    assert download.suggested_filename.endswith(".xlsx")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    expect(dialog).to_be_hidden()

    wb = load_workbook(path)
    assert wb.sheetnames == ["Questions", "Moderation log"]
    ws = wb["Questions"]
    header = [c.value for c in ws[1]]
    for column in ("question_id", "status", "question", "translation_ru", "approved_at", "on_air_at", "answered_at"):
        assert column in header
    assert "email" not in header and ws.freeze_panes == "A2"
    rows: dict[int, dict[str, Any]] = {
        r[0]: dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)
    }
    expected = {label: qid for label, qid in scene.ids.items() if label not in ("hidden", "elsewhere")}
    assert set(rows) == set(expected.values())  # Moscow's questions only, the hidden one never
    assert {label: rows[qid]["status"] for label, qid in expected.items()} == {
        "answered": "answered",
        "on_air": "on_air",
        "queued": "queued",
        "approved": "approved",
        "pending": "pending",
        "merged": "merged",
        "rejected": "rejected",
        "formula": "pending",
    }
    answered = rows[scene.ids["answered"]]
    assert all(isinstance(answered[c], datetime) for c in ("asked_at", "approved_at", "on_air_at", "answered_at"))
    assert rows[scene.ids["merged"]]["merged_into"] == scene.ids["queued"]
    assert rows[scene.ids["queued"]]["translation_ru"] == "Вы экспортируете в Европу?"
    assert rows[scene.ids["queued"]]["votes"] == 2 and rows[scene.ids["rejected"]]["reject_reason"] == "off_topic"
    assert rows[scene.ids["formula"]]["question"] == FORMULA  # text, as asked
    assert rows[scene.ids["pending"]]["wants_answer"] == "yes" and EMAIL not in str(rows)
    assert wb["Moderation log"].max_row > 1
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_a_refused_export_says_why_in_the_dialog_in_the_moderators_language(server, new_page) -> None:
    page = open_console(lambda: new_page(locale="ar"), server.base)
    expect(page.locator("#export-btn")).to_have_text("تصدير")
    page.click("#export-btn")
    expect(page.locator("#export-ok")).to_have_text("تنزيل")
    # A speaker removed from the programme meanwhile: the server refuses, the dialog says so.
    page.evaluate("""() => { const s = document.getElementById('export-speaker');
        s.append(new Option('gone', '999999')); s.value = '999999'; }""")
    page.click("#export-ok")
    expect(page.locator("#export-error")).to_contain_text("تعذّر التصدير: no speaker 999999")
    expect(page.locator("#export-dlg")).to_be_visible()
    shot(page, "console-export-refused-ar")
