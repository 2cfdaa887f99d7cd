"""The public feed over real sockets: who hears what, votes from two viewers, the
coalesced counts, a change of language, refused input (real server, Redis, SQL)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from qa_service.services import questions
from qa_service.services.context import Context

from ..support import SECOND, WsClient, start_server, wait_until, ws_client

pytestmark = pytest.mark.integration


def _hello(c: WsClient, **payload: Any) -> dict[str, Any]:
    reply = c.request("hello", payload)
    assert reply["ok"], reply
    c.drain(0.2 * SECOND)
    return reply["payload"]


def _feed(c: WsClient) -> dict[str, Any]:
    return c.snapshots[-1]["payload"]["feed"]


def _approved(ctx: Context, event_id: int, speaker: int, text: str, language: str = "en") -> int:
    payload = {"client_id": uuid.uuid4().hex, "speaker_id": speaker, "text": text, "language": language}
    qid = int(questions.ask(ctx, event_id, "viewer-asker", payload).question["id"])
    questions.moderate(ctx, event_id, qid, "approve", "mod1", expected_version=None)
    return qid


def test_two_viewers_see_the_approved_question_and_each_others_votes(server, ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    pending_text = "Still waiting for a moderator?"
    payload = {"client_id": "c-pending", "speaker_id": speaker, "text": pending_text, "language": "en"}
    questions.ask(ctx, event_id, "viewer-asker", payload)
    with ws_client(f"{server.ws_base}/ws/viewer") as a, ws_client(f"{server.ws_base}/ws/viewer") as b:
        _hello(a, language="ru")
        _hello(b, language="de")
        assert _feed(a) == {"language": "ru", "items": [], "texts": {}}
        assert a.snapshots[-1]["payload"]["my_votes"] == []
        assert set(a.snapshots[-1]["seq"]) >= {"feed", "feed:ru"} and "feed:de" not in a.snapshots[-1]["seq"]

        qid = _approved(ctx, event_id, speaker, "Do you export to Europe?")
        for c in (a, b):
            upsert = c.wait_event(lambda e: e["type"] == "feed.upsert")
            assert (upsert["channel"], upsert["payload"]["id"], upsert["payload"]["status"]) == (
                "feed",
                qid,
                "approved",
            )
        assert not [e for e in a.events + b.events if pending_text in str(e)]  # a pending question: never

        # A's vote: its reply has the count at once; B hears it with the next flush.
        reply = a.request("question.vote", {"question_id": qid, "vote": True})
        assert reply["ok"] and reply["payload"] == {"question_id": qid, "votes": 1, "voted": True}
        changed = b.wait_event(lambda e: e["type"] == "votes.changed")
        assert changed["payload"] == {"votes": {str(qid): 1}}
        b.request("question.vote", {"question_id": qid, "vote": True})
        a.wait_event(lambda e: e["type"] == "votes.changed" and e["payload"]["votes"] == {str(qid): 2})

    # A newcomer's feed has both votes.
    with ws_client(f"{server.ws_base}/ws/viewer") as again:
        _hello(again, language="ru")
        assert [i["votes"] for i in _feed(again)["items"]] == [2]


def test_a_viewer_remembers_its_votes_across_sockets(server, ctx, event_id, sample) -> None:
    qid = _approved(ctx, event_id, sample["speakers"]["moscow"][0].id, "Who are your main customers?")
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        token = _hello(c, language="en")["viewer_token"]
        assert c.request("question.vote", {"question_id": qid, "vote": True})["ok"]
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c, viewer_token=token, language="en")
        assert c.snapshots[-1]["payload"]["my_votes"] == [qid]
        took_back = c.request("question.vote", {"question_id": qid, "vote": False})
        assert took_back["payload"] == {"question_id": qid, "votes": 0, "voted": False}


def test_changing_language_brings_the_feed_in_the_new_one(server, ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    qid = _approved(ctx, event_id, speaker, "Do you export to Europe?")
    questions.edit_translation(ctx, event_id, qid, "de", "Exportieren Sie nach Europa?", "mod1", expected_version=None)
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c, language="ru")
        assert _feed(c)["texts"] == {}
        reply = c.request("feed.language", {"language": "de-AT"})
        assert reply["ok"] and reply["payload"] == {"language": "de"}
        wait_until(lambda: (c.pump(0.1), _feed(c)["language"] == "de")[1], 5 * SECOND, "a snapshot in German")
        assert _feed(c)["texts"][str(qid)]["text"] == "Exportieren Sie nach Europa?"
        assert "feed:de" in c.snapshots[-1]["seq"] and "feed:ru" not in c.snapshots[-1]["seq"]
        # Texts in German now reach it; Russian ones no longer do.
        questions.edit_translation(
            ctx, event_id, qid, "ru", "Вы экспортируете в Европу?", "mod1", expected_version=None
        )
        questions.edit_translation(ctx, event_id, qid, "de", "Exportieren Sie?", "mod1", expected_version=None)
        text = c.wait_event(lambda e: e["type"] == "feed.text")
        assert (text["channel"], text["payload"]["text"]) == ("feed:de", "Exportieren Sie?")
        c.drain(0.3 * SECOND)
        assert not [e for e in c.events if e["channel"] == "feed:ru"]


@pytest.mark.parametrize(
    "type_, payload, code",
    [
        ("question.vote", {"question_id": "7", "vote": True}, "vote.invalid"),
        ("question.vote", {"question_id": 7, "vote": None}, "vote.invalid"),
        ("question.vote", {"question_id": 999999, "vote": True}, "question.unknown"),
        ("feed.language", {"language": "<script>"}, "feed.language_invalid"),
        ("feed.language", {}, "feed.language_invalid"),
    ],
)
def test_bad_feed_requests_get_a_clear_error(server, event_id, type_, payload, code) -> None:
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c, language="en")
        reply = c.request(type_, payload)
        assert not reply["ok"] and reply["error"]["code"] == code, reply


def test_a_hello_with_a_malformed_language_is_refused(server, event_id) -> None:
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        reply = c.request("hello", {"language": 42})
        assert not reply["ok"] and reply["error"]["code"] == "feed.language_invalid"


def test_votes_are_rate_limited_per_viewer(settings_factory, ctx, event_id, sample) -> None:
    srv = start_server(settings_factory(votes_per_minute=3))
    qid = _approved(ctx, event_id, sample["speakers"]["moscow"][0].id, "How much water does the mine use?")
    try:
        _limited(srv, qid)
    finally:
        srv.stop()


def _limited(srv: Any, qid: int) -> None:
    with ws_client(f"{srv.ws_base}/ws/viewer") as c:
        _hello(c, language="en")
        codes = [c.request("question.vote", {"question_id": qid, "vote": n % 2 == 0}) for n in range(4)]
        assert [r["ok"] for r in codes] == [True, True, True, False]
        assert codes[-1]["error"]["code"] == "rate.limited" and codes[-1]["error"]["details"]["retry_after"] > 0


def _hub_of(server: Any) -> Any:
    return server.server.config.app.state.hub


def test_a_language_change_that_outlives_its_socket_leaves_no_listener_and_no_reader(server, event_id) -> None:
    """The reviewer's leak: requests queued behind others on a socket that closes at once
    (they complete after it is gone) must not subscribe or count a reader."""
    hub = _hub_of(server)
    for _ in range(5):
        with ws_client(f"{server.ws_base}/ws/viewer") as c:
            _hello(c, language="en")
            for n in range(6):
                c.send_raw(f'{{"type": "snapshot", "id": "s{n}", "payload": {{}}}}')
            c.send_raw('{"type": "feed.language", "id": "lang", "payload": {"language": "fr"}}')
    from qa_service.hub.endpoints import _WORKERS

    # Every socket closed, and every request it left behind done (they finish after their sockets).
    wait_until(lambda: not hub.connections and not _WORKERS, 20 * SECOND, "every socket and request done")
    assert dict(hub.feed_readers) == {}
    assert hub.bus.listener_count == 0


def test_the_feed_is_read_only_in_the_events_languages_and_changes_are_limited(server, event_id) -> None:
    with ws_client(f"{server.ws_base}/ws/viewer") as c:
        _hello(c, language="xx")  # a code the event is not read in: the originals
        assert _feed(c)["language"] is None
        assert not [ch for ch in c.snapshots[-1]["seq"] if ch.startswith("feed:")]
        refused = c.request("feed.language", {"language": "ko"})
        assert refused["error"]["code"] == "feed.language_unavailable"
        codes = []
        for lang in ["de", "fr", "es", "ru", "en", "zh", "ar", "id", "uz", "de", "fr", "es"]:
            reply = c.request("feed.language", {"language": lang})
            codes.append("ok" if reply["ok"] else reply["error"]["code"])
        assert codes[:10] == ["ok"] * 10 and codes[10:] == ["rate.limited"] * 2
    hub = _hub_of(server)  # once its socket is gone (closed on the server a moment later), no reader is left
    wait_until(lambda: not hub.connections and not hub.feed_readers, 10 * SECOND, "no reader counted")
