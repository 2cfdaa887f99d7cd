"""GET /api/export (qa_service/api/export.py): who may export what, the files'
headers, and clear refusals of bad parameters."""

from __future__ import annotations

import csv
import io

import httpx
import pytest
from openpyxl import load_workbook

from qa_service.services import questions
from qa_service.services.accounts import add_user

from ..conftest import MOD_PASSWORD
from ..export_scenario import EMAIL, mid_event
from ..support import login

pytestmark = pytest.mark.integration
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_staff_download_each_format_with_attachment_headers(server, ctx, event_id, sample, moderator) -> None:
    scene = mid_event(ctx, event_id, sample)
    r = moderator.get("/api/export", params={"format": "xlsx", "studio": scene.moscow})
    assert r.status_code == 200 and r.headers["content-type"] == XLSX
    assert r.headers["cache-control"] == "no-store"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="industry-marathon-questions-studio-moscow-')
    assert disposition.endswith('.xlsx"')
    wb = load_workbook(io.BytesIO(r.content))
    ids = {row[0] for row in wb["Questions"].iter_rows(min_row=2, values_only=True)}
    assert ids == {qid for label, qid in scene.ids.items() if label not in ("hidden", "elsewhere")}

    plain = moderator.get("/api/export")  # the defaults: the questions, as CSV
    assert plain.headers["content-type"] == "text/csv; charset=utf-8"
    assert len(list(csv.DictReader(io.StringIO(plain.text)))) == len(scene.ids) - 1
    log = moderator.get("/api/export", params={"what": "log", "format": "json", "speaker": scene.dmitry}).json()
    assert log["what"] == "log" and log["filters"]["speaker_id"] == scene.dmitry
    assert {row["question_id"] for row in log["rows"]} == {scene.ids["approved"]}


def test_the_unanswered_file_has_addresses_for_admins_only(server, ctx, event_id, sample, moderator) -> None:
    scene = mid_event(ctx, event_id, sample)
    # The question with the consented address, approved: the speaker's team gets it.
    questions.moderate(ctx, event_id, scene.ids["pending"], "approve", "mod1", expected_version=None)
    add_user(ctx, "admin1", MOD_PASSWORD, "admin")
    params = {"what": "unanswered", "format": "json", "speaker": scene.anna}
    mod = moderator.get("/api/export", params=params)
    assert mod.status_code == 200 and EMAIL not in mod.text
    assert "email" not in mod.json()["columns"] and "wants_answer" in mod.json()["columns"]
    assert mod.headers["content-disposition"] == f'attachment; filename="unanswered-{scene.anna}-anna-sokolova.json"'
    admin = login(server.base, "admin1", MOD_PASSWORD)
    full = admin.get("/api/export", params=params).json()
    admin.close()
    assert EMAIL in {row["email"] for row in full["rows"]}


def test_who_may_export_and_bad_parameters(server, ctx, event_id) -> None:
    assert httpx.get(f"{server.base}/api/export").status_code == 401
    add_user(ctx, "host1", MOD_PASSWORD, "host")
    host = login(server.base, "host1", MOD_PASSWORD)
    r = host.get("/api/export")
    host.close()
    assert (r.status_code, r.json()["error"]["code"]) == (403, "auth.forbidden")
    mod = login(server.base, "mod1", MOD_PASSWORD)
    try:
        for params, status, code in [
            ({"format": "pdf"}, 400, "request.invalid"),
            ({"what": "everything"}, 400, "request.invalid"),
            ({"speaker": "abc"}, 400, "request.invalid"),
            ({"studio": ""}, 400, "request.invalid"),
            ({"segment": "0"}, 400, "request.invalid"),
            ({"speaker": "99999999999"}, 400, "request.invalid"),
            ({"speaker": "999999"}, 404, "speaker.unknown"),
            ({"studio": "999999"}, 404, "studio.unknown"),
            ({"segment": "999999"}, 404, "segment.unknown"),
        ]:
            r = mod.get("/api/export", params=params)
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), params
            assert r.headers["content-type"] == "application/json"
        assert "format must be one of csv, json, xlsx" in mod.get("/api/export?format=pdf").json()["error"]["message"]
    finally:
        mod.close()
