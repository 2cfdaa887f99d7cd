"""Viewer socket against a real server, real Redis and real SQL (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select
from websockets.exceptions import ConnectionClosed

from qa_service.db.models import Question
from qa_service.services.context import Context

from ..support import SECOND, WsClient, start_server, wait_until, ws_client

pytestmark = pytest.mark.integration


def _count(ctx: Context) -> int:
    with ctx.transaction() as (db, _):
        return int(db.exec(select(sa.func.count()).select_from(Question)).one())


def _hello(c: WsClient, **payload: Any) -> dict[str, Any]:
    reply = c.request("hello", payload)
    assert reply["ok"], reply
    return reply["payload"]


def _ask(
    c: WsClient, speaker_id: int, text: str = "What is the payback period of the new line?", **extra: Any
) -> dict[str, Any]:
    payload = {"client_id": uuid.uuid4().hex, "speaker_id": speaker_id, "text": text, "language": "en"} | extra
    return c.request("question.ask", payload)


def live_speaker(sample: dict[str, Any]) -> int:
    return int(sample["speakers"]["moscow"][1].id)


def test_ask_is_acknowledged_only_once_stored(server, ctx, sample) -> None:
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        hello = _hello(c)
        assert hello["start"] == "snapshot" and hello["viewer_token"]
        reply = _ask(c, live_speaker(sample), display_name="Ahmed", text="<b>Bold</b> question?")
        assert reply["ok"], reply
        q = reply["payload"]["question"]
        assert q["status"] == "received"
        with ctx.transaction() as (db, _):
            row = db.get(Question, q["id"])
        assert row is not None
        assert (row.text, row.display_name, row.viewer_id, row.status) == (
            "<b>Bold</b> question?",
            "Ahmed",
            hello["viewer_id"],
            "pending",
        )
        # The asker's own channel tells them too.
        event = c.wait_event(lambda e: e["type"] == "question.created")
        assert event["payload"]["id"] == q["id"]


def test_same_client_id_twice_stores_one_question(server, ctx, sample) -> None:
    payload = {"client_id": "client-id-0001", "speaker_id": live_speaker(sample), "text": "Twice?", "language": "en"}
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        token = _hello(c)["viewer_token"]
        first = c.request("question.ask", payload)
    # Reconnect as the same viewer (as after a dropped connection) and resend.
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c, viewer_token=token)
        second = c.request("question.ask", payload)
    assert first["ok"] and second["ok"]
    assert second["payload"]["duplicate"] is True
    assert first["payload"]["question"]["id"] == second["payload"]["question"]["id"]
    assert _count(ctx) == 1


def test_questions_to_unknown_or_not_live_speakers_are_refused(server, ctx, sample) -> None:
    upcoming = int(sample["speakers"]["lima"][0].id)
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c)
        unknown = _ask(c, 999999)
        not_live = _ask(c, upcoming)
        not_int = _ask(c, "1")  # type: ignore[arg-type]
    assert unknown["error"]["code"] == "speaker.unknown"
    assert not_live["error"]["code"] == "speaker.not_live"
    assert "Lucía Quispe" in not_live["error"]["message"]
    assert not_int["error"]["code"] == "speaker.invalid"
    assert _count(ctx) == 0


def test_upcoming_speakers_take_questions_when_the_setting_allows(settings_factory, event_id, sample) -> None:

    srv = start_server(settings_factory(accept_upcoming_questions=True))
    try:
        with ws_client(f"{srv.ws_base}/ws/viewer") as c:
            _hello(c)
            assert _ask(c, int(sample["speakers"]["lima"][0].id))["ok"]
    finally:
        srv.stop()


BAD_FIELDS = [
    ({"text": ""}, "question.empty"),
    ({"text": "x" * 501}, "question.too_long"),
    ({"text": "hi\x00there"}, "question.control_chars"),
    ({"text": None}, "question.empty"),
    ({"text": ["list"]}, "question.invalid"),
    ({"language": "english"}, "question.language_invalid"),
    ({"client_id": "x"}, "question.client_id_invalid"),
    ({"display_name": "n" * 61}, "display_name.too_long"),
    ({"display_name": "bad\x1bname"}, "display_name.control_chars"),
]


@pytest.mark.parametrize(("override", "code"), BAD_FIELDS)
def test_bad_question_fields_get_their_code_and_store_nothing(server, ctx, sample, override, code) -> None:
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c)
        reply = _ask(c, live_speaker(sample), **override)
        assert reply["ok"] is False and reply["error"]["code"] == code, reply
        assert reply["error"]["message"]
        # The connection is still usable afterwards.
        assert _ask(c, live_speaker(sample))["ok"]
    assert _count(ctx) == 1


def test_bad_frames_get_clear_errors_and_the_socket_stays_usable(server, ctx, sample) -> None:
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c)
        cases = [
            ("{not json", "message.malformed"),
            ("[1,2]", "message.invalid"),
            (json.dumps({"id": "x1"}), "message.missing_type"),
            (json.dumps({"type": "question.ask", "id": "p", "payload": "text"}), "message.invalid_payload"),
            (b"\x00\x01binary", "frame.binary"),
            ("{" + " " * (64 * 1024) + "}", "frame.too_large"),
        ]
        for frame, code in cases:
            c.send_raw(frame)
            reply = c.next_reply()
            assert reply["error"]["code"] == code, (frame[:30], reply)
        unknown = c.request("question.delete_all", {})
        assert unknown["error"]["code"] == "message.unknown_type"
        assert _ask(c, live_speaker(sample))["ok"]
    assert _count(ctx) == 1


def test_invalid_utf8_text_frame_closes_with_1007(server, ctx) -> None:
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c)
        # A text frame whose bytes are not UTF-8 is a protocol violation (RFC 6455 §8.1).
        # The client library refuses to send one, so write the masked frame by hand.
        payload, mask = b"\xff\xfe\xfd", b"\x01\x02\x03\x04"
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        c.ws.socket.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(50):
                c.pump(0.1)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
    assert _count(ctx) == 0


def test_huge_frame_is_cut_by_the_protocol_limit(server, ctx) -> None:
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c)
        # Announce a 1 MiB text frame; the server refuses it on the header alone.
        header = bytes([0x81, 0x80 | 127]) + (1024 * 1024).to_bytes(8, "big") + b"\x01\x02\x03\x04"
        c.ws.socket.sendall(header)
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(50):
                c.pump(0.1)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert _count(ctx) == 0


def test_requests_before_hello_are_refused(server, sample) -> None:
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        reply = _ask(c, live_speaker(sample))
        assert reply["error"]["code"] == "session.hello_required"


def test_question_flood_is_rate_limited(server, ctx, sample) -> None:
    limit = server.server.config.app.state.settings.questions_per_minute
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c)
        codes = [(_ask(c, live_speaker(sample)).get("error") or {}).get("code") for _ in range(limit + 3)]
    assert codes[:limit] == [None] * limit
    assert codes[limit:] == ["rate.limited"] * 3
    assert _count(ctx) == limit


def test_message_flood_is_answered_then_cut(server) -> None:
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c)
        try:
            for _ in range(2000):
                c.send_raw(json.dumps({"type": "ping", "id": None}))
        except ConnectionClosed:
            pass  # the server may cut us off while we are still sending
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(3000):  # read what the server sent before it closed
                c.pump(0.1)
        codes = [r.get("error", {}).get("code") for r in c.replies.values()]
        assert "rate.limited" in codes
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429


def test_another_viewer_never_receives_a_pending_question(server, sample) -> None:
    with ws_client(f"{server.ws_base}/ws/viewer") as asker, ws_client(f"{server.ws_base}/ws/viewer") as other:
        _hello(asker)
        _hello(other)
        reply = _ask(asker, live_speaker(sample), text="Secret pending question")
        assert reply["ok"]
        asker.wait_event(lambda e: e["type"] == "question.created")
        other.drain(1 * SECOND)
        assert all("Secret pending question" not in json.dumps(e) for e in other.events)
        assert other.events == []
        # Nor does a fresh snapshot of the other viewer show it.
        snap = other.request("snapshot")
        assert "Secret pending question" not in json.dumps(snap)


def test_country_comes_along_when_well_formed(server, ctx, sample) -> None:
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c)
        good = _ask(c, live_speaker(sample), country="eg")["payload"]["question"]["id"]
        odd = _ask(c, live_speaker(sample), country="Egypt<script>")["payload"]["question"]["id"]
    with ctx.transaction() as (db, _):
        assert db.get(Question, good).country == "EG"
        assert db.get(Question, odd).country is None


def test_a_merged_askers_socket_follows_the_kept_question(server, ctx, event_id, sample) -> None:
    from qa_service.services import questions

    def act(qid: int, action: str, **kwargs: Any) -> None:
        questions.moderate(ctx, event_id, qid, action, "mod1", expected_version=None, **kwargs)

    with ws_client(f"{server.ws_base}/ws/viewer") as asker, ws_client(f"{server.ws_base}/ws/viewer") as keeper:
        token = _hello(asker)["viewer_token"]
        _hello(keeper)
        mine = _ask(asker, live_speaker(sample), text="Will prices fall?")["payload"]["question"]["id"]
        kept = _ask(keeper, live_speaker(sample), text="Kept: are prices going down?")["payload"]["question"]["id"]
        act(mine, "merge", merged_into=kept)
        for action, word in (("approve", "approved"), ("on_air", "on_air"), ("answer", "answered")):
            act(kept, action)
            event = asker.wait_event(
                lambda e, word=word: e["type"] == "question.updated" and e["payload"]["status"] == word
            )
            assert event["channel"].startswith("viewer:") and event["payload"]["id"] == mine
            assert event["payload"]["merged"] is True and event["payload"]["text"] == "Will prices fall?"
        asker.drain(0.3 * SECOND)
        # Its own channel names nothing of the kept question (the public feed shows it, approved, to all).
        assert "Kept" not in json.dumps([e for e in asker.events if e["channel"].startswith("viewer:")])
    # A fresh snapshot, on a new socket of the same viewer, says the same.
    with ws_client(f"{server.ws_base}/ws/viewer") as again:
        _hello(again, viewer_token=token)
        wait_until(lambda: again.pump(0.1) or again.snapshots, 5 * SECOND, "the hello snapshot")
        (own,) = again.snapshots[-1]["payload"]["questions"]
        assert (own["id"], own["status"], own["merged"], own["reason"]) == (mine, "answered", True, None)
        assert again.request("snapshot")["payload"]["questions"] == [own]


def test_a_banned_askers_socket_sees_its_question_received(server, ctx, event_id, sample) -> None:
    from qa_service.services import questions

    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        token = _hello(c)["viewer_token"]
        first = _ask(c, live_speaker(sample), text="First?")["payload"]["question"]["id"]
        questions.ban_asker(ctx, event_id, first, "mod1")
        reply = _ask(c, live_speaker(sample), text="Second?")["payload"]["question"]
        assert (reply["status"], reply["reason"]) == ("received", None)
        event = c.wait_event(lambda e: e["type"] == "question.created" and e["payload"]["id"] == reply["id"])
        assert (event["payload"]["status"], event["payload"]["reason"]) == ("received", None)
    with ws_client(f"{server.ws_base}/ws/viewer") as again:
        _hello(again, viewer_token=token)
        snap = again.request("snapshot")["payload"]
        assert [(q["status"], q["reason"]) for q in snap["questions"]] == [("received", None)] * 2
        assert "hidden" not in json.dumps(snap["questions"])
