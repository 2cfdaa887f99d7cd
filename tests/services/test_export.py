"""The organiser's export (services/export.py) mid-event, on SQLite and PostgreSQL:
one row per question with its translations, statuses, merges, votes, asker fields
and the times read from the moderation log; the log itself; the filters; CSV, JSON
and XLSX, formula-safe; the e-mail address only in the speaker team's file."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

import pytest
from openpyxl import load_workbook

from qa_service.domain.errors import DomainError
from qa_service.services import export, questions

from ..export_scenario import EMAIL, FORMULA, MidEvent, mid_event

pytestmark = pytest.mark.integration


@pytest.fixture
def scene(ctx, event_id, sample) -> MidEvent:
    return mid_event(ctx, event_id, sample)


def _by_id(table: export.Table) -> dict[int, dict[str, Any]]:
    return {int(r["question_id"]): r for r in table.rows}  # type: ignore[arg-type]


def test_one_row_per_question_with_its_life_read_from_the_log(ctx, scene: MidEvent) -> None:
    out = export.questions_export(ctx, None)
    questions, log = out.tables
    rows, ids = _by_id(questions), scene.ids
    assert set(rows) == set(ids.values()) - {ids["hidden"]}  # a banned asker's question: nobody saw it
    assert {label: rows[qid]["status"] for label, qid in ids.items() if qid in rows} == {
        "answered": "answered",
        "on_air": "on_air",
        "queued": "queued",
        "approved": "approved",
        "pending": "pending",
        "merged": "merged",
        "rejected": "rejected",
        "formula": "pending",
        "elsewhere": "pending",
    }
    answered, on_air, pending = rows[ids["answered"]], rows[ids["on_air"]], rows[ids["pending"]]
    assert answered["asked_at"] <= answered["approved_at"] <= answered["on_air_at"] <= answered["answered_at"]
    assert on_air["approved_at"] <= on_air["on_air_at"] and on_air["answered_at"] is None
    assert (pending["approved_at"], pending["on_air_at"], pending["answered_at"]) == (None, None, None)
    assert rows[ids["approved"]]["approved_at"] is not None and rows[ids["approved"]]["on_air_at"] is None
    assert (rows[ids["merged"]]["merged_into"], rows[ids["queued"]]["merged_from"]) == (
        ids["queued"],
        str(ids["merged"]),
    )
    assert (rows[ids["rejected"]]["reject_reason"], rows[ids["queued"]]["votes"]) == ("off_topic", 2)
    assert rows[ids["queued"]]["translation_ru"] == "Вы экспортируете в Европу?"
    assert (pending["name"], pending["country"], pending["field_company"]) == ("Ana", "PT", "Uralmash")
    assert (pending["wants_answer"], rows[ids["queued"]]["wants_answer"]) == (True, False)
    assert (pending["speaker_id"], pending["studio_id"], pending["studio"]) == (scene.anna, scene.moscow, "Host studio")
    assert "email" not in questions.columns and EMAIL not in json.dumps(out.render("json").decode())
    assert all(isinstance(r["asked_at"], datetime) for r in questions.rows)
    assert questions.columns.index("translation_ru") < questions.columns.index("translation_state")
    assert log.title == "Moderation log" and log.rows


def test_the_log_tells_who_did_what_and_filters_follow_the_scope(ctx, scene: MidEvent) -> None:
    log = export.log_export(ctx, None).tables[0]
    ids = scene.ids
    mine = [
        (r["action"], r["from_status"], r["to_status"], r["actor"])
        for r in log.rows
        if r["question_id"] == ids["answered"]
    ]
    assert mine == [
        ("approve", "pending", "approved", "mod1"),
        ("enqueue", "approved", "queued", "mod1"),
        ("on_air", "queued", "on_air", "mod1"),
        ("answer", "on_air", "answered", "mod1"),
    ]
    (reject,) = [r for r in log.rows if r["question_id"] == ids["rejected"] and r["action"] == "reject"]
    assert reject["reject_reason"] == "off_topic" and reject["studio_id"] == scene.moscow
    (edit,) = [r for r in log.rows if r["action"] == "edit_translation"]
    assert json.loads(str(edit["details"]))["language"] == "ru"
    assert [r["id"] for r in log.rows] == sorted(r["id"] for r in log.rows)  # type: ignore[type-var]

    dmitry = export.log_export(ctx, None, export.Filters(speaker_id=scene.dmitry)).tables[0]
    assert {r["question_id"] for r in dmitry.rows} == {ids["approved"]}
    assert not [r for r in dmitry.rows if r["action"] == "reorder"]  # a studio's order is no speaker's
    moscow = export.log_export(ctx, None, export.Filters(studio="moscow")).tables[0]
    assert {r["studio_id"] for r in moscow.rows} == {scene.moscow}
    (live,) = export.log_export(ctx, None, export.Filters(studio=scene.other_studio)).tables[0].rows
    assert (live["action"], live["actor"], live["question_id"], live["details"]) == ("segment.live", "mod2", None, None)


def test_filters_by_speaker_studio_and_segment(ctx, scene: MidEvent, sample) -> None:
    ids = scene.ids

    def qids(**kw: Any) -> set[int]:
        return set(_by_id(export.questions_export(ctx, None, export.Filters(**kw)).tables[0]))

    assert qids(speaker_id=scene.dmitry) == {ids["approved"], ids["formula"]}
    assert qids(studio=scene.other_studio) == {ids["elsewhere"]}
    assert qids(studio=str(scene.other_studio)) == qids(studio=scene.other_studio)
    assert ids["elsewhere"] not in qids(studio="moscow")
    segment = next(s for s in sample["segments"].values() if s.studio_id == scene.moscow)
    assert qids(segment_id=segment.id) == qids(studio="moscow")
    assert qids(studio="moscow", speaker_id=scene.other_speaker) == set()  # both: nothing is both
    for filters, code in [
        (export.Filters(speaker_id=999_999), "speaker.unknown"),
        (export.Filters(studio=999_999), "studio.unknown"),
        (export.Filters(studio="atlantis"), "studio.unknown"),
        (export.Filters(segment_id=999_999), "segment.unknown"),
    ]:
        with pytest.raises(DomainError) as err:
            export.questions_export(ctx, None, filters)
        assert err.value.code == code
    out = export.questions_export(ctx, None, export.Filters(speaker_id=scene.dmitry, studio="moscow"))
    assert out.filters == {
        "speaker_id": scene.dmitry,
        "studio_id": scene.moscow,
        "studio": "moscow",
        "segment_id": None,
    }
    assert out.filename("xlsx").startswith(f"industry-marathon-questions-studio-moscow-speaker-{scene.dmitry}-")


def test_csv_is_formula_safe_and_json_is_a_document(ctx, scene: MidEvent) -> None:
    out = export.questions_export(ctx, None)
    rows = {int(r["question_id"]): r for r in csv.DictReader(io.StringIO(out.render("csv").decode("utf-8")))}
    formula = rows[scene.ids["formula"]]
    assert (formula["question"], formula["field_company"]) == ("'" + FORMULA, "'+7 Minus & Co")
    assert formula["asked_at"].endswith("Z") and formula["wants_answer"] == "no"
    doc = json.loads(out.render("json"))
    assert doc["what"] == "questions" and doc["event"] == {"slug": "industry-marathon", "name": doc["event"]["name"]}
    assert doc["filters"] == {"speaker_id": None, "studio_id": None, "studio": None, "segment_id": None}
    assert doc["generated_at"].endswith("Z") and doc["columns"] == out.tables[0].columns
    by_id = {r["question_id"]: r for r in doc["rows"]}
    assert by_id[scene.ids["formula"]]["question"] == FORMULA  # JSON is no spreadsheet: the text as it is
    assert by_id[scene.ids["pending"]]["wants_answer"] is True


def test_xlsx_has_both_sheets_a_frozen_header_text_as_text_and_real_times(ctx, scene: MidEvent) -> None:
    out = export.questions_export(ctx, None)
    wb = load_workbook(io.BytesIO(out.render("xlsx")))
    assert wb.sheetnames == ["Questions", "Moderation log"]
    ws = wb["Questions"]
    header = [c.value for c in ws[1]]
    assert header == out.tables[0].columns and ws.freeze_panes == "A2" and ws[1][0].font.b
    assert ws.column_dimensions["A"].width and ws.column_dimensions["U"].width > ws.column_dimensions["A"].width
    rows = {r[0].value: dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=2)}
    assert set(rows) == {r["question_id"] for r in out.tables[0].rows}
    formula = rows[scene.ids["formula"]]
    assert (formula["question"].value, formula["question"].data_type) == (FORMULA, "s")  # not a formula
    assert formula["field_company"].value == "+7 Minus & Co"
    answered = rows[scene.ids["answered"]]
    assert isinstance(answered["answered_at"].value, datetime) and answered["answered_at"].is_date
    assert (answered["starred"].value, rows[scene.ids["queued"]]["votes"].value) == ("no", 2)
    log = wb["Moderation log"]
    assert [c.value for c in log[1]] == export.LOG_COLUMNS and log.max_row == len(out.tables[1].rows) + 1


def test_the_speaker_teams_file_in_every_format_and_without_addresses_when_asked(
    ctx, event_id, scene: MidEvent
) -> None:
    # Only what a moderator let through (a pending question, a rejected one are not the team's)...
    (anna,) = export.unanswered(ctx, None, scene.anna)
    assert {r["question_id"] for r in anna.rows} == {scene.ids[k] for k in ("queued", "merged")}
    # ...so once the one with the consented address is approved, it is there, address and all.
    questions.moderate(ctx, event_id, scene.ids["pending"], "approve", "mod1", expected_version=None)
    (anna,) = export.unanswered(ctx, None, scene.anna)
    assert {r["question_id"] for r in anna.rows} == {scene.ids[k] for k in ("queued", "merged", "pending")}
    both = export.unanswered_export(ctx, None, export.Filters(speaker_id=scene.anna))
    assert both.filename("xlsx") == anna.filename("xlsx") == anna.name.replace(".csv", ".xlsx")
    wb = load_workbook(io.BytesIO(both.render("xlsx")))
    (ws,) = wb.worksheets
    header = [c.value for c in ws[1]]
    emails = [r[header.index("email")].value for r in ws.iter_rows(min_row=2)]
    assert EMAIL in emails
    doc = json.loads(both.render("json"))
    assert doc["what"] == "unanswered" and EMAIL in {r["email"] for r in doc["rows"]}

    private = export.unanswered_export(ctx, None, export.Filters(studio="moscow"), contacts=False)
    table = private.tables[0]
    assert table.columns[:4] == export.SPEAKER_COLUMNS and "wants_answer" in table.columns
    assert "email" not in table.columns and "consent_at" not in table.columns
    assert EMAIL not in private.render("csv").decode() + private.render("json").decode()
    assert {r["speaker_id"] for r in table.rows} == {scene.anna, scene.dmitry}
    assert private.filename("csv").startswith("industry-marathon-unanswered-studio-moscow-")
    with pytest.raises(DomainError):
        export.build(ctx, None, "everything")
