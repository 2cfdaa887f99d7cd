"""The programme edited over REST: admins only, CSRF like every write, errors in the one body."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from qa_service.services.accounts import add_user

from ..conftest import MOD_PASSWORD
from ..services.support import ask
from ..support import login

pytestmark = pytest.mark.integration


@pytest.fixture
def admin(server, ctx) -> Any:
    add_user(ctx, "admin1", MOD_PASSWORD, "admin")
    client = login(server.base, "admin1", MOD_PASSWORD)
    yield client
    client.close()


def live_segment_id(sample: dict[str, Any]) -> int:
    return int(sample["segments"][sample["studios"]["moscow"].id].id)


def test_an_admin_adds_changes_and_deletes_a_speaker(server, admin, sample) -> None:
    seg = live_segment_id(sample)
    r = admin.post(
        "/api/admin/speakers", json={"segment_id": seg, "name": "Mei Ling", "title": None, "languages": ["zh", "en"]}
    )
    assert r.status_code == 200, r.text
    sp = r.json()
    assert (sp["name"], sp["title"], sp["languages"]) == ("Mei Ling", "", ["zh", "en"])
    r = admin.put(f"/api/admin/speakers/{sp['id']}", json={"title": "Analyst"})
    assert r.status_code == 200 and r.json()["title"] == "Analyst"
    view = admin.get("/api/admin/event").json()
    assert view["timezone"] == "Europe/Moscow" and view["version"] > 0
    assert "Mei Ling" in {s["name"] for s in view["speakers"]}
    audit = admin.get("/api/moderation/audit").json()["actions"]
    assert [(a["actor"], a["action"]) for a in audit[:2]] == [
        ("admin1", "event.speaker_update"),
        ("admin1", "event.speaker_add"),
    ]
    assert admin.delete(f"/api/admin/speakers/{sp['id']}").json() == {"deleted": sp["id"]}
    assert admin.delete(f"/api/admin/speakers/{sp['id']}").json()["error"]["code"] == "speaker.unknown"


def test_errors_name_the_field_and_conflicts_are_409(server, ctx, event_id, admin, sample) -> None:
    seg = live_segment_id(sample)
    r = admin.post("/api/admin/speakers", json={"segment_id": seg, "name": "X", "languages": ["english"]})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "speaker.invalid" and r.json()["error"]["details"]["field"] == "languages"
    r = admin.put(f"/api/admin/segments/{seg}", json={"starts_at": "2030-01-07T10:00", "ends_at": "2030-01-07T09:00"})
    assert (r.status_code, r.json()["error"]["details"]["field"]) == (400, "ends_at")
    dmitry = sample["speakers"]["moscow"][1].id
    ask(ctx, event_id, dmitry)
    r = admin.delete(f"/api/admin/speakers/{dmitry}")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "speaker.has_questions" and r.json()["error"]["details"]["questions"] == 1
    counts = admin.get("/api/admin/event").json()["questions"]
    assert counts["speakers"] == {str(dmitry): 1} and counts["segments"] == {str(seg): 1}
    r = admin.put(f"/api/admin/segments/{seg}", json={"title": "x", "version": 42})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "segment.stale_version")
    assert admin.put("/api/admin/studios/999999", json={"name": "x"}).status_code == 404


def test_moderators_and_strangers_are_refused(server, moderator, admin, sample) -> None:
    seg = live_segment_id(sample)
    body = {"segment_id": seg, "name": "Nobody", "languages": ["en"]}
    r = moderator.post("/api/admin/speakers", json=body)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "auth.forbidden")
    assert moderator.get("/api/admin/event").status_code == 403
    r = httpx.post(f"{server.base}/api/admin/speakers", json=body)
    assert (r.status_code, r.json()["error"]["code"]) == (401, "auth.required")
    # An admin's cookie without the CSRF header: refused, nothing added.
    r = httpx.post(f"{server.base}/api/admin/speakers", json=body, cookies=dict(admin.cookies))
    assert (r.status_code, r.json()["error"]["code"]) == (403, "auth.csrf")
    assert "Nobody" not in {s["name"] for s in admin.get("/api/admin/event").json()["speakers"]}


def test_the_admin_page_is_served(server) -> None:
    r = httpx.get(f"{server.base}/admin")
    assert r.status_code == 200 and "admin.js" in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
