"""Hostile input at every edge: out-of-range integers, oversized numbers, deep JSON,
invisible text, unknown languages, line breaks in names, the hello order and deadline,
the Origin of staff sockets, address bans. Each answer is a documented client error,
never a 500 or ``server.error``."""

from __future__ import annotations

import json
import socket
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from qa_service.db.models import AddressBan, Question, utcnow
from qa_service.domain.errors import DomainError
from qa_service.domain.validation import clean_language, clean_text, is_blank
from qa_service.security import Signer

from ..support import SECOND, WsClient, cookie_header, start_server, ws_client

HUGE = 2**64  # beyond 64 bits (SQLite overflows), yet 20 digits: a number the JSON parser lets through
PATH_HUGE = 99999999999999999999999
BEYOND_INT32 = 2_147_483_648  # beyond PostgreSQL's integer column


def _hello(c: WsClient, **payload: Any) -> dict[str, Any]:
    reply = c.request("hello", payload)
    assert reply["ok"], reply
    return reply["payload"]


def _ask(c: WsClient, speaker_id: object, text: str = "What is the payback period?", **extra: Any) -> dict[str, Any]:
    payload = {"client_id": uuid.uuid4().hex, "speaker_id": speaker_id, "text": text, "language": "en"} | extra
    return c.request("question.ask", payload)


def _code(reply: dict[str, Any]) -> str | None:
    return (reply.get("error") or {}).get("code")


def _live_speaker(sample: dict[str, Any]) -> int:
    return int(sample["speakers"]["moscow"][1].id)


def _pending_question(server: Any, sample: dict[str, Any], text: str = "A fair question?") -> int:
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c)
        reply = _ask(c, _live_speaker(sample), text)
        assert reply["ok"], reply
        return int(reply["payload"]["question"]["id"])


def _host_url(server: Any, settings: Any, studio: Any) -> str:
    token = Signer(settings.secret_key).host_token(studio.id, studio.host_token_version)
    return f"{server.ws_base}/ws/host?token={token}"


# ── pure rules ─────────────────────────────────────────────────────────────
@pytest.mark.parametrize(
    "raw",
    [
        "\u200b\u200c\u200d",  # zero-width space, non-joiner, joiner
        "\u2060\ufeff\u00ad",  # word joiner, BOM, soft hyphen
        "\u0301\u0301\u20dd",  # combining marks without a base
        " \u3000\u2028 \u200b ",  # whitespace of all kinds around a zero-width space
        "\u3164\u2800",  # Hangul filler, Braille blank: letters that show nothing
        "\U000e0041\U000e0042",  # tag characters
    ],
)
def test_text_that_shows_nothing_is_empty(raw: str) -> None:
    assert is_blank(raw)
    with pytest.raises(DomainError) as err:
        clean_text(raw, field="question", max_chars=500, required=True)
    assert err.value.code == "question.empty"
    assert clean_text(raw, field="display_name", max_chars=60, required=False) is None


def test_visible_text_with_joiners_and_marks_stays() -> None:
    for text in ("e\u0301", "👩\u200d💻", "ok\u200b", "ي\u200cك"):
        assert not is_blank(text)
    assert clean_text("Omar", field="display_name", max_chars=60, required=False, single_line=True) == "Omar"


def test_a_name_with_a_line_break_is_refused() -> None:
    for raw in ("Omar\nInjected", "Omar\r\nX", "Omar\u2028X", "Omar\u2029X"):
        with pytest.raises(DomainError) as err:
            clean_text(raw, field="display_name", max_chars=60, required=False, single_line=True)
        assert err.value.code == "display_name.line_break"


def test_languages_must_be_known() -> None:
    assert clean_language("pt-BR") == "pt"
    assert clean_language("fil", also={"fil"}) == "fil"
    for raw in ("xx", "qq", "zzz", "xx-YY"):
        with pytest.raises(DomainError) as err:
            clean_language(raw)
        assert err.value.code == "question.language_unknown"


# ── REST ───────────────────────────────────────────────────────────────────
@pytest.mark.integration
def test_out_of_range_integers_over_rest_are_client_errors(server, moderator, sample) -> None:
    qid = _pending_question(server, sample)
    studio = sample["studios"]["moscow"].id
    cases: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", f"/api/questions/{PATH_HUGE}/approve", {"version": 1}),
        ("POST", f"/api/questions/{'9' * 5000}/approve", {"version": 1}),  # past int()'s digit limit
        ("POST", f"/api/questions/{HUGE}/approve", {"version": 1}),
        ("POST", f"/api/questions/{BEYOND_INT32}/approve", {"version": 1}),
        ("POST", "/api/questions/0/approve", {"version": 1}),
        ("POST", f"/api/questions/{HUGE}/star", {"version": 1, "starred": True}),
        ("PUT", f"/api/questions/{HUGE}/translations/en", {"version": 1, "text": "x"}),
        ("POST", f"/api/questions/{qid}/approve", {"version": HUGE}),
        ("POST", f"/api/questions/{qid}/approve", {"version": BEYOND_INT32}),
        ("POST", f"/api/questions/{qid}/approve", {"version": -1}),
        ("POST", f"/api/questions/{qid}/merge", {"version": 1, "into": HUGE}),
        ("POST", f"/api/questions/{qid}/merge", {"version": 1, "into": BEYOND_INT32}),
        ("POST", f"/api/questions/{qid}/ban", {"address_minutes": 43_201}),
        ("POST", f"/api/questions/{qid}/ban", {"address_minutes": -1}),
        ("POST", f"/api/studios/{HUGE}/queue", {"question_id": qid, "index": 0}),
        ("POST", f"/api/studios/{studio}/queue", {"question_id": HUGE, "index": 0}),
        ("POST", f"/api/studios/{studio}/queue", {"question_id": BEYOND_INT32, "index": 0}),
        ("POST", f"/api/studios/{studio}/queue", {"question_id": qid, "index": HUGE}),
        ("POST", f"/api/studios/{studio}/queue", {"question_id": qid, "index": -1}),
        ("POST", f"/api/studios/{studio}/queue", {"order": [qid], "version": HUGE}),
        ("POST", f"/api/segments/{HUGE}/status", {"status": "live"}),
        ("GET", f"/api/moderation/audit?question_id={HUGE}", None),
        ("GET", f"/api/moderation/audit?question_id={PATH_HUGE}", None),
        ("GET", f"/api/moderation/audit?question_id={BEYOND_INT32}", None),
        ("GET", "/api/moderation/audit?question_id=-3", None),
        ("GET", "/api/moderation/audit?limit=1_000", None),
    ]
    wrong = []
    for method, path, body in cases:
        r = moderator.request(method, path, json=body)
        code = r.json().get("error", {}).get("code") if r.headers.get("content-type") == "application/json" else None
        if (r.status_code, code) != (400, "request.invalid"):
            wrong.append((method, path, body, r.status_code, code))
    assert wrong == [], wrong
    # The order list holds ids too.
    r = moderator.post(f"/api/studios/{studio}/queue", json={"order": [HUGE]})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "queue.invalid")
    # And the question is untouched.
    assert moderator.post(f"/api/questions/{qid}/approve", json={"version": 1}).status_code == 200


@pytest.mark.integration
def test_huge_numbers_and_deep_json_in_rest_bodies_are_refused(server, moderator, sample) -> None:
    qid = _pending_question(server, sample)
    headers = {"content-type": "application/json"}
    cases = [
        ('{"version": ' + "9" * 5000 + "}", "request.number_too_large"),
        ('{"version": 1, "x": ' + "1" * 21 + "}", "request.number_too_large"),
        ('{"version": 1, "x": 1e999}', "request.number_too_large"),
        ('{"version": 1, "x": NaN}', "request.malformed"),
        ('{"version": 1, "x": ' + "[" * 50_000 + "]" * 50_000 + "}", "request.too_deep"),
        ('{"version": 1, "x": ' + "[" * 33 + "]" * 33 + "}", "request.too_deep"),
        ('{"version": 1, "x": ' + '{"a":' * 40 + "1" + "}" * 40 + "}", "request.too_deep"),
    ]
    wrong = []
    for body, expected in cases:
        r = moderator.post(f"/api/questions/{qid}/approve", content=body, headers=headers)
        code = r.json().get("error", {}).get("code") if r.headers.get("content-type") == "application/json" else None
        if (r.status_code, code) != (400, expected):
            wrong.append((body[:40], r.status_code, code))
    assert wrong == [], wrong
    # 20 digits and 32 levels are fine (the version is then checked as usual).
    r = moderator.post(
        f"/api/questions/{qid}/approve",
        content='{"version": 1, "x": ' + "[" * 31 + "1" * 20 + "]" * 31 + "}",
        headers=headers,
    )
    assert r.status_code == 200, r.text


# ── websocket payloads ─────────────────────────────────────────────────────
@pytest.mark.integration
def test_out_of_range_integers_over_sockets_are_client_errors(settings_factory, settings, sample) -> None:
    server = start_server(settings_factory(questions_per_minute=100))  # every ask reaches validation
    try:
        with ws_client(f"{server.ws_base}/ws/viewer") as viewer:
            _hello(viewer)
            codes = [_code(_ask(viewer, value)) for value in (HUGE, BEYOND_INT32, 0, -5, True, 1.5, "7")]
            assert codes == ["speaker.invalid"] * 7
            assert _ask(viewer, _live_speaker(sample))["ok"]
        with ws_client(_host_url(server, settings, sample["studios"]["moscow"])) as host:
            _hello(host)
            replies = [
                host.request("host.on_air", {"question_id": HUGE}),
                host.request("host.on_air", {"question_id": BEYOND_INT32}),
                host.request("host.answer", {"question_id": 0}),
                host.request("host.skip", {"question_id": 1, "version": HUGE}),
                host.request("host.on_air", {"question_id": 1, "version": BEYOND_INT32}),
                host.request("host.on_air", {"question_id": 1, "version": "7"}),
            ]
            assert [_code(r) for r in replies] == ["question.invalid"] * 6, replies
            assert host.request("ping")["payload"] == {"pong": True}
    finally:
        server.stop()


@pytest.mark.integration
def test_huge_numbers_and_deep_json_in_frames_are_refused(server) -> None:
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c)
        frames = [
            ('{"type": "ping", "id": "n1", "payload": {"n": ' + "9" * 5000 + "}}", "message.number_too_large"),
            ('{"type": "ping", "id": "n2", "payload": {"n": ' + "1" * 21 + "}}", "message.number_too_large"),
            ('{"type": "ping", "id": "n3", "payload": {"n": -1e400}}', "message.number_too_large"),
            ('{"type": "ping", "id": "n4", "payload": {"n": Infinity}}', "message.malformed"),
            ('{"type": "ping", "id": "d1", "payload": {"a": ' + "[" * 40 + "]" * 40 + "}}", "message.too_deep"),
            ('{"type": "ping", "id": "d2", "payload": ' + '{"a":' * 3000 + "1" + "}" * 3001, "message.too_deep"),
        ]
        for frame, expected in frames:
            c.send_raw(frame)
            reply = c.next_reply()
            assert _code(reply) == expected, (frame[:50], reply)
        assert c.request("ping")["payload"] == {"pong": True}


@pytest.mark.integration
def test_questions_that_should_never_be_stored_are_refused(server, ctx, sample) -> None:
    speaker = _live_speaker(sample)
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c)
        assert _code(_ask(c, speaker, "\u200b\u200d\u0301 \u2060\ufeff")) == "question.empty"
        assert _code(_ask(c, speaker, language="xx")) == "question.language_unknown"
        assert _code(_ask(c, speaker, display_name="Omar\nModerator: approved")) == "display_name.line_break"
        assert _ask(c, speaker, language="ar", display_name="  Omar  ")["ok"]
    with ctx.transaction() as (db, _):
        stored = list(db.exec(select(Question)))
    assert [(q.language, q.display_name) for q in stored] == [("ar", "Omar")]


@pytest.mark.integration
def test_ping_before_hello_is_refused(server) -> None:
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        assert _code(c.request("ping")) == "session.hello_required"
        _hello(c)
        assert c.request("ping")["payload"] == {"pong": True}


@pytest.mark.integration
def test_hello_deadline_is_not_extended_by_other_frames(settings_factory, event_id) -> None:
    srv = start_server(settings_factory(hello_timeout_seconds=1))
    try:
        with ws_client(f"{srv.ws_base}/ws/viewer") as c:
            opened = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                while time.monotonic() - opened < 6 * SECOND:
                    c.send_raw(json.dumps({"type": "ping", "id": None}))
                    c.drain(0.3)
            elapsed = time.monotonic() - opened
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
        assert 0.8 < elapsed < 1 + 1.5 * SECOND, elapsed
    finally:
        srv.stop()


# ── the Origin of staff sockets ────────────────────────────────────────────
def _moderator_outcome(url: str, cookie: str, **kwargs: Any) -> int | str:
    """'accepted' when hello is answered, else the close code the server sent."""
    try:
        with connect(url, open_timeout=10 * SECOND, additional_headers={"Cookie": cookie}, **kwargs) as ws:
            ws.send(json.dumps({"type": "hello", "id": "h", "payload": {}}))
            while True:
                msg = json.loads(ws.recv(timeout=10 * SECOND))
                if msg.get("type") == "reply":
                    return "accepted" if msg["ok"] else str(msg["error"]["code"])
    except ConnectionClosed as exc:
        assert exc.rcvd is not None, "closed without a close frame"
        return exc.rcvd.code


@pytest.mark.integration
def test_staff_sockets_need_an_allowed_origin(server, moderator) -> None:
    url = f"{server.ws_base}/ws/moderator"
    cookie = cookie_header(moderator)
    port = server.ws_base.rsplit(":", 1)[1]
    assert _moderator_outcome(url, cookie, origin=f"http://127.0.0.1:{port}") == "accepted"
    # The right host with the wrong scheme is another origin.
    assert _moderator_outcome(url, cookie, origin=f"https://127.0.0.1:{port}") == 4403
    # No Origin: refused (a browser always sends one; anything else has no business here).
    assert _moderator_outcome(url, cookie) == 4403
    assert _moderator_outcome(url, cookie, origin="null") == 4403
    # A forged Host header that matches a forged Origin proves nothing.
    with socket.create_connection(("127.0.0.1", int(port))) as sock:
        forged = _moderator_outcome(
            "ws://evil.example:4444/ws/moderator", cookie, origin="http://evil.example:4444", sock=sock
        )
    assert forged == 4403


# ── address bans ───────────────────────────────────────────────────────────
@pytest.mark.integration
def test_a_banned_asker_who_drops_its_token_is_still_hidden(server, ctx, moderator, sample) -> None:
    speaker = _live_speaker(sample)
    first = _pending_question(server, sample, "Buy my crypto course")
    banned = moderator.post(f"/api/questions/{first}/ban")
    assert banned.status_code == 200, banned.text
    # A new viewer (no token) from the same address: hidden as the banned viewer would be.
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c)
        again = _ask(c, speaker, "Buy my crypto course, again")
    # Silently: the asker sees "received" like anyone (no reason that would reveal the ban).
    assert again["ok"] and (again["payload"]["question"]["status"], again["payload"]["question"]["reason"]) == (
        "received",
        None,
    ), again
    assert banned.json()["address_banned_until"]
    with ctx.transaction() as (db, _):
        from qa_service.keys import address_hash, signing_key

        stored = db.get(Question, first)
        assert stored is not None and stored.address_hash == address_hash(signing_key(ctx.settings), "127.0.0.1")
        assert not [k for k, v in stored.model_dump().items() if "127.0.0.1" in str(v)]  # the address itself: nowhere
    texts = [q["text"] for q in moderator.get("/api/moderation/snapshot").json()["questions"]]
    assert "Buy my crypto course" in texts and "Buy my crypto course, again" not in texts
    # Once the address ban has expired, the address asks like anyone.
    with ctx.transaction() as (db, _):
        for ban in db.exec(select(AddressBan)):
            ban.expires_at = utcnow() - timedelta(minutes=1)
            db.add(ban)
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c)
        later = _ask(c, speaker, "A real question at last")
    assert later["ok"] and later["payload"]["question"]["status"] == "received", later
    texts = [q["text"] for q in moderator.get("/api/moderation/snapshot").json()["questions"]]
    assert "A real question at last" in texts


@pytest.mark.integration
def test_a_ban_without_address_minutes_bans_only_the_viewer(server, ctx, moderator, sample) -> None:
    first = _pending_question(server, sample, "Spam")
    r = moderator.post(f"/api/questions/{first}/ban", json={"address_minutes": 0})
    assert r.status_code == 200 and r.json()["address_banned_until"] is None
    with ctx.transaction() as (db, _):
        assert list(db.exec(select(AddressBan))) == []
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c)
        other = _ask(c, _live_speaker(sample), "Someone else at the same office")
    assert other["payload"]["question"]["status"] == "received", other
