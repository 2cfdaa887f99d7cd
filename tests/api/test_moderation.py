"""Moderation over REST: auth, CSRF, every action, versions, audit, OpenAPI."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlmodel import select

from qa_service.db.models import ModerationAction, Question, Studio
from qa_service.services import questions

from ..conftest import MOD_PASSWORD
from ..support import login

pytestmark = pytest.mark.integration


def _ask(ctx: Any, event_id: int, speaker_id: int, text: str = "A question?") -> int:
    result = questions.ask(
        ctx,
        event_id,
        "viewer-0001",
        {"client_id": uuid.uuid4().hex, "speaker_id": speaker_id, "text": text, "language": "en"},
    )
    return int(result.question["id"])


def test_login_sets_a_safe_cookie_and_logout_clears_it(server) -> None:
    client = httpx.Client(base_url=server.base)
    client.__enter__()
    bad = client.post("/api/login", json={"username": "mod1", "password": "wrong-password"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "auth.invalid"
    r = client.post("/api/login", json={"username": "mod1", "password": MOD_PASSWORD})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert client.get("/api/me").json()["user"] == "mod1"
    client.post("/api/logout")
    assert client.get("/api/me").status_code == 401
    client.close()


def test_writes_need_login_and_csrf(server, ctx, event_id, sample) -> None:
    qid = _ask(ctx, event_id, sample["speakers"]["moscow"][0].id)
    with httpx.Client(base_url=server.base) as anonymous:
        assert anonymous.post(f"/api/questions/{qid}/approve", json={"version": 1}).status_code == 401
        assert anonymous.get("/api/moderation/snapshot").status_code == 401
    client = login(server.base, "mod1", MOD_PASSWORD)
    del client.headers["X-CSRF-Token"]
    r = client.post(f"/api/questions/{qid}/approve", json={"version": 1})
    client.close()
    assert r.status_code == 403 and r.json()["error"]["code"] == "auth.csrf"
    with ctx.transaction() as (db, _):
        assert db.get(Question, qid).status == "pending"


def test_full_life_cycle_with_versions_and_audit(moderator, ctx, event_id, sample) -> None:
    qid = _ask(ctx, event_id, sample["speakers"]["moscow"][0].id)
    post = moderator.post
    r = post(f"/api/questions/{qid}/approve", json={"version": 1, "enqueue": False})
    assert r.json()["status"] == "approved" and r.json()["version"] == 2
    stale = post(f"/api/questions/{qid}/enqueue", json={"version": 1})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "question.stale_version"
    assert post(f"/api/questions/{qid}/enqueue", json={"version": 2}).json()["status"] == "queued"
    assert post(f"/api/questions/{qid}/dequeue", json={"version": 3}).json()["status"] == "approved"
    illegal = post(f"/api/questions/{qid}/answer", json={"version": 4})
    assert illegal.status_code == 409 and illegal.json()["error"]["code"] == "question.illegal_transition"
    assert (
        post(f"/api/questions/{qid}/reject", json={"version": 4}).json()["error"]["code"] == "question.reason_required"
    )
    assert (
        post(f"/api/questions/{qid}/reject", json={"version": 4, "reason": "duplicate"}).json()["status"] == "rejected"
    )
    assert post(f"/api/questions/{qid}/reopen", json={"version": 5}).json()["status"] == "pending"
    assert post(f"/api/questions/{qid}/fly", json={"version": 6}).json()["error"]["code"] == "action.unknown"
    assert post(f"/api/questions/{qid}/approve", json={"version": "6"}).status_code == 400
    assert post(f"/api/questions/{qid}/approve", content=b"{oops").json()["error"]["code"] == "request.malformed"
    audit = moderator.get("/api/moderation/audit", params={"question_id": qid}).json()["actions"]
    assert [a["action"] for a in reversed(audit)] == ["approve", "enqueue", "dequeue", "reject", "reopen"]
    assert all(a["actor"] == "mod1" for a in audit)
    assert audit[0]["before"]["status"] == "rejected" and audit[0]["after"]["status"] == "pending"


def test_translation_edit_merge_star_and_queue_order(moderator, ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0]
    studio_id = sample["studios"]["moscow"].id
    ids = [_ask(ctx, event_id, speaker.id, f"Question {i}") for i in range(4)]
    for qid in ids[:3]:
        assert moderator.post(f"/api/questions/{qid}/approve", json={"version": 1}).status_code == 200
    r = moderator.put(f"/api/questions/{ids[0]}/translations/ru", json={"version": 3, "text": "Вопрос 0"})
    assert r.status_code == 200
    assert r.json()["translations"]["ru"] == {
        "language": "ru",
        "text": "Вопрос 0",
        "engine": "human",
        "model_version": "",
        "edited_by": "mod1",
    }
    star = moderator.post(f"/api/questions/{ids[1]}/star", json={"version": 3, "starred": True})
    assert star.json()["starred"] is True
    merged = moderator.post(f"/api/questions/{ids[3]}/merge", json={"version": 1, "into": ids[0]})
    assert merged.json()["status"] == "merged" and merged.json()["merged_into"] == ids[0]
    assert (
        moderator.post(f"/api/questions/{ids[2]}/merge", json={"version": 3, "into": ids[2]}).json()["error"]["code"]
        == "question.merge_self"
    )

    order = moderator.post(f"/api/studios/{studio_id}/queue", json={"question_id": ids[2], "index": 0})
    assert order.json()["order"] == [ids[2], ids[0], ids[1]]
    full = moderator.post(f"/api/studios/{studio_id}/queue", json={"order": [ids[1], ids[2], ids[0]]})
    assert full.json()["order"] == [ids[1], ids[2], ids[0]]
    bad = moderator.post(f"/api/studios/{studio_id}/queue", json={"order": [ids[1]]})
    assert bad.json()["error"]["code"] == "queue.mismatch"
    with ctx.read() as db:
        seen = db.get(Studio, studio_id).queue_version
    stale = moderator.post(
        f"/api/studios/{studio_id}/queue", json={"order": [ids[0], ids[2], ids[1]], "version": seen - 1}
    )
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "queue.stale_version"
    with ctx.transaction() as (db, _):
        queued = db.exec(
            select(Question).where(Question.status == "queued").order_by(Question.queue_position)  # type: ignore[arg-type]
        ).all()
        assert [q.id for q in queued] == [ids[1], ids[2], ids[0]]
        assert db.exec(select(ModerationAction).where(ModerationAction.action == "reorder")).all()


def test_segment_goes_live_by_hand_and_the_clock_leaves_it(moderator, ctx, event_id, sample) -> None:
    lima = sample["segments"][sample["studios"]["lima"].id]
    assert lima.status == "upcoming"
    r = moderator.post(f"/api/segments/{lima.id}/status", json={"status": "live"})
    assert r.status_code == 200 and r.json()["status"] == "live" and r.json()["status_manual"] is True
    import time

    time.sleep(0.6)  # several clock ticks (0.2 s in tests)
    schedule = moderator.get("/api/schedule").json()
    assert next(s for s in schedule["segments"] if s["id"] == lima.id)["status"] == "live"
    assert moderator.post(f"/api/segments/{lima.id}/status", json={"status": "soon"}).status_code == 400


def test_openapi_schema_lists_the_routes(server) -> None:
    schema = httpx.get(f"{server.base}/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert "/api/questions/{question_id}/{action}" in schema["paths"]
    assert "/api/studios/{studio_id}/queue" in schema["paths"]


def test_undo_reverts_the_last_request_whole(moderator, ctx, event_id, sample) -> None:
    qid = _ask(ctx, event_id, sample["speakers"]["moscow"][0].id)
    approved = moderator.post(f"/api/questions/{qid}/approve", json={"version": 1}).json()
    assert approved["status"] == "queued"
    undone = moderator.post(f"/api/questions/{qid}/undo", json={"version": approved["version"]})
    assert undone.status_code == 200, undone.text
    assert undone.json()["status"] == "pending" and undone.json()["queue_position"] is None
    rejected = moderator.post(
        f"/api/questions/{qid}/reject", json={"version": undone.json()["version"], "reason": "off_topic"}
    ).json()
    back = moderator.post(f"/api/questions/{qid}/undo", json={"version": rejected["version"]}).json()
    assert back["status"] == "pending" and back["reject_reason"] is None
    # Someone else acted since: undo is refused with the fresh version.
    other = login_as(moderator, "mod2")
    changed = other.post(f"/api/questions/{qid}/approve", json={"version": back["version"]}).json()
    stale = moderator.post(f"/api/questions/{qid}/undo", json={"version": back["version"]})
    assert stale.status_code == 409 and stale.json()["error"]["details"]["current_version"] == changed["version"]
    other.close()


def test_banned_viewers_questions_are_hidden(moderator, ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    first = _ask(ctx, event_id, speaker, "Spam one")
    assert moderator.post(f"/api/questions/{first}/ban").json()["banned"] == "viewer-0"
    hidden = questions.ask(
        ctx,
        event_id,
        "viewer-0001",
        {"client_id": uuid.uuid4().hex, "speaker_id": speaker, "text": "Spam two", "language": "en"},
    )
    assert (hidden.question["status"], hidden.question["reason"]) == ("received", None)  # the ban is not revealed
    snapshot = moderator.get("/api/moderation/snapshot").json()
    texts = [q["text"] for q in snapshot["questions"]]
    assert "Spam one" in texts and "Spam two" not in texts
    other = questions.ask(
        ctx,
        event_id,
        "viewer-0002",
        {"client_id": uuid.uuid4().hex, "speaker_id": speaker, "text": "Fine", "language": "en"},
    )
    assert other.question["status"] == "received"


def test_unban_lets_the_askers_next_question_through(moderator, ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id

    def ask(viewer: str, text: str, address: str = "addr-hash-1") -> dict[str, Any]:
        payload = {"client_id": uuid.uuid4().hex, "speaker_id": speaker, "text": text, "language": "en"}
        return questions.ask(ctx, event_id, viewer, payload, address_hash=address).question

    def seen_by_moderators() -> list[str]:
        return [q["text"] for q in moderator.get("/api/moderation/snapshot").json()["questions"]]

    first = ask("viewer-0001", "Spam one")
    banned = moderator.post(f"/api/questions/{first['id']}/ban", json={"address_minutes": 60}).json()
    assert banned["address_banned_until"] is not None
    ask("viewer-0001", "Hidden two")
    ask("viewer-0002", "Hidden three, same address")
    assert "Hidden two" not in seen_by_moderators() and "Hidden three, same address" not in seen_by_moderators()

    r = moderator.post(f"/api/questions/{first['id']}/unban")
    assert r.status_code == 200 and r.json() == {"banned": False}
    after = ask("viewer-0001", "Welcome back")
    other = ask("viewer-0003", "Same address, new viewer")
    assert after["status"] == "received" and other["status"] == "received"
    texts = seen_by_moderators()
    assert "Welcome back" in texts and "Same address, new viewer" in texts
    assert "Hidden two" not in texts  # hidden while banned: stays hidden
    audit = moderator.get("/api/moderation/audit", params={"question_id": first["id"]}).json()["actions"]
    assert [a["action"] for a in audit][:2] == ["unban", "ban"] and audit[0]["actor"] == "mod1"
    assert audit[0]["after"] == {"viewer": "viewer-0", "address": True}
    # Unbanning again changes nothing and says the same.
    assert moderator.post(f"/api/questions/{first['id']}/unban").json() == {"banned": False}
    anonymous = httpx.post(f"{str(moderator.base_url).rstrip('/')}/api/questions/{first['id']}/unban")
    assert anonymous.status_code == 401


def test_on_air_now_for_an_approved_question_and_enqueue_requeues(moderator, ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    studio_id = sample["studios"]["moscow"].id
    current, taken_out, waiting = (_ask(ctx, event_id, speaker, f"Q{i}?") for i in range(3))
    post = moderator.post
    for qid in (current, taken_out, waiting):
        assert post(f"/api/questions/{qid}/approve", json={"version": 1}).json()["status"] == "queued"
    assert post(f"/api/questions/{current}/on_air", json={"version": 3}).json()["status"] == "on_air"
    out = post(f"/api/questions/{taken_out}/dequeue", json={"version": 3}).json()
    assert out["status"] == "approved"

    # One request: queued, then on air; the one on air is answered.
    now = post(f"/api/questions/{taken_out}/on_air", json={"version": out["version"]})
    assert now.status_code == 200, now.text
    assert now.json()["status"] == "on_air" and now.json()["version"] == out["version"] + 2
    with ctx.read() as db:
        assert db.get(Question, current).status == "answered"
        assert [q.id for q in questions.queued_in(db, studio_id)] == [waiting]
    audit = moderator.get("/api/moderation/audit", params={"question_id": taken_out}).json()["actions"]
    assert [a["action"] for a in audit[:2]] == ["on_air", "enqueue"]
    assert audit[0]["after"]["batch"] == audit[1]["after"]["batch"]

    # One undo takes both steps back: approved, out of the queue, nothing on air.
    back = post(f"/api/questions/{taken_out}/undo", json={"version": now.json()["version"]}).json()
    assert (back["status"], back["queue_position"]) == ("approved", None)
    with ctx.read() as db:
        assert db.get(Question, current).status == "answered"  # the host's answer stands
        assert [q.id for q in questions.queued_in(db, studio_id)] == [waiting]

    # enqueue is the re-queue: back at the end of the queue.
    again = post(f"/api/questions/{taken_out}/enqueue", json={"version": back["version"]})
    assert again.status_code == 200 and again.json()["status"] == "queued"
    with ctx.read() as db:
        assert [q.id for q in questions.queued_in(db, studio_id)] == [waiting, taken_out]
    # A stale version is refused before anything moves.
    stale = post(f"/api/questions/{waiting}/on_air", json={"version": 1})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "question.stale_version"


def login_as(client: httpx.Client, username: str) -> httpx.Client:
    return login(str(client.base_url).rstrip("/"), username, MOD_PASSWORD)


def test_a_committed_question_stands_when_redis_is_gone(settings, ctx, event_id, sample) -> None:
    """The ack follows the commit; if announcing fails afterwards, nothing is undone."""
    import redis as redis_lib

    from qa_service.bus.redis_bus import SyncPublisher
    from qa_service.db.models import Question
    from qa_service.services.context import Context

    dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    offline = Context(settings, ctx.engine, SyncPublisher(dead, settings.redis_prefix, settings.history_size))
    result = questions.ask(
        offline,
        event_id,
        "viewer-0009",
        {
            "client_id": uuid.uuid4().hex,
            "speaker_id": sample["speakers"]["moscow"][0].id,
            "text": "Still here?",
            "language": "en",
        },
    )
    assert result.created
    with ctx.transaction() as (db, _):
        assert db.get(Question, result.question["id"]).text == "Still here?"
    dead.close()
