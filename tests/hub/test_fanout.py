"""Who receives what: moderator, host and viewer sockets side by side."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from qa_service.security import Signer

from ..support import SECOND, WsClient, cookie_header, start_server, ws_client

pytestmark = pytest.mark.integration


def host_url(server: Any, settings: Any, studio: Any) -> str:
    return (
        f"{server.ws_base}/ws/host?token={Signer(settings.secret_key).host_token(studio.id, studio.host_token_version)}"
    )


def moderator_ws(server: Any, client: httpx.Client) -> Any:
    return ws_client(f"{server.ws_base}/ws/moderator", additional_headers={"Cookie": cookie_header(client)})


def ask(c: WsClient, speaker_id: int, text: str, language: str = "en") -> dict[str, Any]:
    reply = c.request(
        "question.ask", {"client_id": uuid.uuid4().hex, "speaker_id": speaker_id, "text": text, "language": language}
    )
    assert reply["ok"], reply
    return reply["payload"]["question"]


def test_moderator_sees_pending_host_sees_only_approved(server, settings, sample, moderator) -> None:
    moscow = sample["studios"]["moscow"]
    speaker = sample["speakers"]["moscow"][1]
    with (
        ws_client(f"{server.ws_base}/ws/viewer") as viewer,
        moderator_ws(server, moderator) as mod,
        ws_client(host_url(server, settings, moscow)) as host,
    ):
        for c in (viewer, mod, host):
            assert c.request("hello")["ok"]
            c.pump(SECOND)
        assert mod.snapshots and host.snapshots
        q = ask(viewer, speaker.id, "Will the line run on hydrogen?")
        seen = mod.wait_event(lambda e: e["type"] == "question.created" and e["payload"]["id"] == q["id"])
        assert seen["channel"] == "moderation"
        assert seen["payload"]["status"] == "pending" and seen["payload"]["text"] == "Will the line run on hydrogen?"
        host.drain(0.5 * SECOND)
        assert all(e["channel"] == "schedule" for e in host.events), host.events

        r = moderator.post(f"/api/questions/{q['id']}/approve", json={"version": 1})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "queued" and r.json()["version"] == 3
        up = host.wait_event(lambda e: e["type"] == "queue.upsert")
        assert up["payload"]["id"] == q["id"] and up["payload"]["status"] == "queued"
        assert "viewer" not in up["payload"]  # hosts never learn who asked beyond the display name
        status = viewer.wait_event(lambda e: e["type"] == "question.updated" and e["payload"]["status"] == "approved")
        assert status["payload"]["id"] == q["id"]

        assert moderator.post(f"/api/questions/{q['id']}/on_air", json={"version": 3}).status_code == 200
        host.wait_event(lambda e: e["type"] == "queue.upsert" and e["payload"]["status"] == "on_air")
        viewer.wait_event(lambda e: e["payload"].get("status") == "on_air")
        assert moderator.post(f"/api/questions/{q['id']}/answer", json={"version": 4}).status_code == 200
        viewer.wait_event(lambda e: e["payload"].get("status") == "answered")

        # A rejected question reaches its asker with the reason, and never the host.
        q2 = ask(viewer, speaker.id, "Off-topic advert")
        r = moderator.post(f"/api/questions/{q2['id']}/reject", json={"version": 1, "reason": "advertising"})
        assert r.status_code == 200
        rej = viewer.wait_event(
            lambda e: e["payload"].get("id") == q2["id"] and e["payload"]["status"] == "not_selected"
        )
        assert rej["payload"]["reason"] == "advertising"
        host.drain(0.5 * SECOND)
        assert "Off-topic advert" not in json.dumps(host.events)


def test_host_from_another_studio_hears_nothing_of_this_one(server, settings, sample, moderator) -> None:
    speaker = sample["speakers"]["moscow"][0]
    with (
        ws_client(f"{server.ws_base}/ws/viewer") as viewer,
        ws_client(host_url(server, settings, sample["studios"]["cairo"])) as cairo,
    ):
        viewer.request("hello")
        cairo.request("hello")
        q = ask(viewer, speaker.id, "Moscow question")
        assert moderator.post(f"/api/questions/{q['id']}/approve", json={"version": 1}).status_code == 200
        cairo.drain(0.8 * SECOND)
        assert not [e for e in cairo.events if e["channel"] != "schedule"]


def closed_with(url: str, **kwargs: Any) -> tuple[int, list[str]]:
    """Open a socket, read until the server closes it: (close code, frames received)."""
    frames: list[str] = []
    with connect(url, open_timeout=10 * SECOND, **kwargs) as ws:
        try:
            while True:
                frames.append(str(ws.recv(timeout=10 * SECOND)))
        except ConnectionClosed as exc:
            assert exc.rcvd is not None, "closed without a close frame"
            return exc.rcvd.code, frames


def test_sockets_refuse_strangers_with_documented_close_codes(server, settings, sample, moderator) -> None:
    # Accepted, then closed with the code: a browser sees 4401/4403 (not 1006) and stops retrying.
    assert closed_with(f"{server.ws_base}/ws/moderator", origin=server.base) == (4401, [])
    assert closed_with(f"{server.ws_base}/ws/host?token=forged") == (4401, [])
    # Cookie-authenticated sockets refuse other origins (cross-site websocket hijacking).
    code, frames = closed_with(
        f"{server.ws_base}/ws/moderator",
        additional_headers={"Cookie": cookie_header(moderator)},
        origin="http://evil.example",  # type: ignore[arg-type]
    )
    assert (code, frames) == (4403, [])


def test_revoked_host_link_closes_open_sockets_and_stops_opening(server, settings, sample) -> None:
    from qa_service.cli import host_links

    studio = sample["studios"]["moscow"]
    old = host_url(server, settings, studio)
    with ws_client(old) as host:
        assert host.request("hello")["ok"]
        links = dict(host_links(settings, server.base, revoke="moscow"))
        # The open display loses its socket within seconds (access is re-checked, not only at connect).
        with pytest.raises(ConnectionClosed) as closed:
            deadline = time.monotonic() + 15 * SECOND
            while time.monotonic() < deadline:
                host.pump(0.2)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert closed_with(old)[0] == 4401
    new_token = links["moscow"].rsplit("/", 1)[1]
    with ws_client(f"{server.ws_base}/ws/host?token={new_token}") as host:
        assert host.request("hello")["ok"]


def test_host_controls_move_the_queue_and_reach_viewer_and_moderators(server, settings, sample, moderator) -> None:
    speaker = sample["speakers"]["moscow"][1]
    with (
        ws_client(f"{server.ws_base}/ws/viewer") as viewer,
        moderator_ws(server, moderator) as mod,
        ws_client(host_url(server, settings, sample["studios"]["moscow"])) as host,
    ):
        for c in (viewer, mod, host):
            c.request("hello")
        a = ask(viewer, speaker.id, "First")
        b = ask(viewer, speaker.id, "Second")
        for q in (a, b):
            assert moderator.post(f"/api/questions/{q['id']}/approve", json={"version": 1}).status_code == 200
        assert host.request("host.on_air", {"question_id": a["id"], "version": 3})["ok"]
        # Putting the next one on air marks the current one answered.
        assert host.request("host.on_air", {"question_id": b["id"], "version": 3})["ok"]
        viewer.wait_event(lambda e: e["payload"].get("id") == a["id"] and e["payload"]["status"] == "answered")
        mod.wait_event(lambda e: e["payload"].get("id") == b["id"] and e["payload"].get("status") == "on_air")
        skip = host.request("host.skip", {"question_id": b["id"]})
        assert skip["ok"] and skip["payload"]["question"]["status"] == "queued"
        wrong = host.request("host.answer", {"question_id": b["id"]})
        assert wrong["error"]["code"] == "question.illegal_transition"


def test_a_revoked_host_link_cannot_act_even_before_its_socket_is_closed(
    settings_factory, event_id, sample, moderator_factory
) -> None:
    from qa_service.cli import host_links

    settings = settings_factory(access_recheck_seconds=300)  # the periodic re-check will not come first
    srv = start_server(settings)
    try:
        studio = sample["studios"]["moscow"]
        with ws_client(host_url(srv, settings, studio)) as host:
            assert host.request("hello")["ok"]
            host_links(settings, srv.base, revoke="moscow")
            reply = host.request("host.next")
            assert reply["ok"] is False and reply["error"]["code"] == "host.link_revoked"
    finally:
        srv.stop()
