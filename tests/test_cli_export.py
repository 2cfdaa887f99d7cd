"""qa-service export questions|log|unanswered, run as the organiser would."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

from qa_service.services import questions

from .export_scenario import EMAIL, mid_event
from .test_cli import run

pytestmark = pytest.mark.integration


def test_export_questions_log_and_unanswered_in_each_format(settings, ctx, event_id, sample, tmp_path: Path) -> None:
    scene = mid_event(ctx, event_id, sample)
    out = tmp_path / "export"
    done = run(settings, "export", "questions", "--format", "xlsx", "--studio", "moscow", "--out", str(out))
    assert done.returncode == 0, done.stderr
    (path,) = out.iterdir()
    assert path.name.startswith("industry-marathon-questions-studio-moscow-") and path.suffix == ".xlsx"
    assert (path.stat().st_mode & 0o777, out.stat().st_mode & 0o777) == (0o600, 0o700)
    wb = load_workbook(path)
    assert wb.sheetnames == ["Questions", "Moderation log"]
    assert "8 row(s)" in done.stdout and wb["Questions"].max_row == 9

    log = tmp_path / "log.json"
    done = run(settings, "export", "log", "--format", "json", "--speaker", str(scene.dmitry), "--out", str(log))
    assert done.returncode == 0, done.stderr
    doc = json.loads(log.read_text(encoding="utf-8"))
    assert {r["question_id"] for r in doc["rows"]} == {scene.ids["approved"]}

    # The speaker's team gets what a moderator let through: the question with the address, once approved.
    questions.moderate(ctx, event_id, scene.ids["pending"], "approve", "mod1", expected_version=None)
    team = tmp_path / "team"
    done = run(settings, "export", "unanswered", "--format", "json", "--speaker", str(scene.anna), "--out", str(team))
    assert done.returncode == 0, done.stderr
    (path,) = team.iterdir()
    assert path.name == f"unanswered-{scene.anna}-anna-sokolova.json"
    assert EMAIL in {r["email"] for r in json.loads(path.read_text(encoding="utf-8"))["rows"]}
    done = run(settings, "export", "unanswered", "--studio", str(scene.moscow), "--out", str(team))  # CSV, as before
    assert done.returncode == 0 and len(list(team.glob("*.csv"))) == 2
    rows = list(csv.DictReader(io.StringIO((team / f"unanswered-{scene.anna}-anna-sokolova.csv").read_text())))
    assert EMAIL in {r["email"] for r in rows}


def test_export_refuses_clearly(settings, ctx, event_id, tmp_path: Path) -> None:
    wrong = run(settings, "export", "questions", "--format", "xlsx", "--out", str(tmp_path / "q.csv"))
    assert wrong.returncode == 2 and "does not end in .xlsx" in wrong.stderr
    unknown = run(settings, "export", "log", "--studio", "atlantis", "--out", str(tmp_path))
    assert unknown.returncode == 2 and "no studio 'atlantis'" in unknown.stderr
    bad = run(settings, "export", "questions", "--format", "pdf")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
