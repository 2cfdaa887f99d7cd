"""GET /api/report and the /report page: who may read it, what it answers, its headers."""

from __future__ import annotations

import httpx
import pytest

from qa_service.api.openapi import document
from qa_service.services import report
from qa_service.services.accounts import add_user

from ..conftest import MOD_PASSWORD
from ..report_data import populate
from ..support import login

pytestmark = pytest.mark.integration


def test_staff_only(server, ctx) -> None:
    add_user(ctx, "host1", MOD_PASSWORD, "host")
    add_user(ctx, "boss", MOD_PASSWORD, "admin")
    with httpx.Client(base_url=server.base) as anonymous:
        r = anonymous.get("/api/report")
        assert r.status_code == 401 and r.json()["error"]["code"] == "auth.required"
    host = login(server.base, "host1", MOD_PASSWORD)
    r = host.get("/api/report")
    host.close()
    assert r.status_code == 403 and r.json()["error"]["code"] == "auth.forbidden"
    for name in ("mod1", "boss"):
        client = login(server.base, name, MOD_PASSWORD)
        r = client.get("/api/report")
        client.close()
        assert r.status_code == 200, name
        assert r.headers["cache-control"] == "no-store"


def test_the_report_is_the_services(moderator, ctx, event_id, sample) -> None:
    populate(ctx, event_id, sample, n=60)
    body = moderator.get("/api/report").json()
    expected = report.build(ctx, event_id)
    body.pop("generated_at"), expected.pop("generated_at")
    assert body == expected
    assert body["totals"]["questions"] == 60
    assert set(document()["components"]["schemas"]["Report"]["required"]) == set(body) | {"generated_at"}


def test_the_page_is_served_under_a_strict_policy(server) -> None:
    r = httpx.get(server.base + "/report")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<meta charset="utf-8">' in r.text and "/static/vendor/chart.umd.js" in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "<script>" not in r.text and " style=" not in r.text  # nothing inline
    vendored = httpx.get(server.base + "/static/vendor/chart.umd.js")
    assert vendored.status_code == 200 and "Chart.js v4." in vendored.text[:200]
