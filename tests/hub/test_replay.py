"""Sequence numbers, replay on reconnect, explicit resync when replay is impossible."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from qa_service.services import questions

from ..support import SECOND, start_server, ws_client
from .test_fanout import moderator_ws

pytestmark = pytest.mark.integration


def _ask(ctx: Any, event_id: int, speaker_id: int, viewer_id: str = "viewer-0001") -> dict[str, Any]:
    payload = {"client_id": uuid.uuid4().hex, "speaker_id": speaker_id, "text": "Replay me?", "language": "en"}
    return questions.ask(ctx, event_id, viewer_id, payload).question


def test_reconnect_with_last_seq_gets_exactly_the_missed_events(server, ctx, event_id, sample, moderator) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    with moderator_ws(server, moderator) as mod:
        mod.request("hello")
        _ask(ctx, event_id, speaker)
        mod.wait_event(lambda e: e["type"] == "question.created")
        seen = [e["seq"] for e in mod.events if e["channel"] == "moderation"]
        resume = dict(mod.last_seq)
    assert seen == list(range(seen[0], seen[-1] + 1))

    # While away: three more events on the moderation channel.
    q = _ask(ctx, event_id, speaker)
    questions.moderate(ctx, event_id, q["id"], "approve", "mod2", expected_version=1, enqueue=False)

    with moderator_ws(server, moderator) as mod:
        hello = mod.request("hello", {"resume": resume})
        assert hello["payload"]["start"] == "replayed"
        mod.drain(0.5 * SECOND)
        assert mod.snapshots == []
        missed = [e for e in mod.events if e["channel"] == "moderation"]
        assert [e["seq"] for e in missed] == [resume["moderation"] + 1, resume["moderation"] + 2]
        assert [e["type"] for e in missed] == ["question.created", "question.updated"]
        assert missed[1]["payload"]["status"] == "approved"
        # Live events continue the same numbering.
        _ask(ctx, event_id, speaker)
        live = mod.wait_event(lambda e: e["channel"] == "moderation" and e["seq"] == resume["moderation"] + 3)
        assert live["type"] == "question.created"


def test_a_too_old_seq_gets_an_explicit_resync_and_a_snapshot(
    settings_factory, ctx, event_id, sample, moderator_factory
) -> None:
    settings = settings_factory(history_size=10)
    srv = start_server(settings)
    client = moderator_factory(srv)
    try:
        speaker = sample["speakers"]["moscow"][0].id
        with moderator_ws(srv, client) as mod:
            mod.request("hello")
            mod.drain(0.3 * SECOND)
            resume = dict(mod.last_seq)
        ctx.publisher.history_size = 10
        for _ in range(15):
            _ask(ctx, event_id, speaker)
        with moderator_ws(srv, client) as mod:
            hello = mod.request("hello", {"resume": resume})
            assert hello["payload"]["start"] == "snapshot"
            mod.drain(0.5 * SECOND)
            assert [m["type"] for m in mod.other] == ["resync"]
            assert len(mod.snapshots) == 1
            assert len(mod.snapshots[0]["payload"]["questions"]) == 15
            assert mod.snapshots[0]["seq"]["moderation"] == resume["moderation"] + 15
    finally:
        client.close()
        srv.stop()


def test_a_seq_from_the_future_gets_a_resync(server, moderator) -> None:
    with moderator_ws(server, moderator) as mod:
        hello = mod.request("hello", {"resume": {"moderation": 10**9, "schedule": 10**9}})
        assert hello["payload"]["start"] == "snapshot"
        mod.drain(0.3 * SECOND)
        assert [m["type"] for m in mod.other] == ["resync"] and len(mod.snapshots) == 1


def test_viewer_resumes_its_own_channel(server, ctx, event_id, sample) -> None:
    speaker = sample["speakers"]["moscow"][0].id
    with ws_client(f"{server.ws_base}/ws/viewer") as v:
        hello = v.request("hello")["payload"]
        q = v.request(
            "question.ask", {"client_id": uuid.uuid4().hex, "speaker_id": speaker, "text": "Status?", "language": "en"}
        )["payload"]["question"]
        v.wait_event(lambda e: e["type"] == "question.created")
        resume = dict(v.last_seq)
    questions.moderate(ctx, event_id, q["id"], "reject", "mod1", expected_version=1, reason="already answered")
    with ws_client(f"{server.ws_base}/ws/viewer") as v:
        again = v.request("hello", {"viewer_token": hello["viewer_token"], "resume": resume})["payload"]
        assert again["start"] == "replayed" and again["viewer_id"] == hello["viewer_id"]
        got = v.wait_event(lambda e: e["type"] == "question.updated")
        assert got["payload"]["status"] == "not_selected" and got["payload"]["reason"] == "already answered"


def test_a_client_too_far_behind_for_its_queue_gets_a_snapshot(
    settings_factory, ctx, event_id, sample, moderator_factory
) -> None:
    """Replaying more than half a socket's queue would cut it as a slow consumer, again and
    again on every reconnect: it gets a snapshot instead."""
    settings = settings_factory(socket_queue_size=8)
    srv = start_server(settings)
    client = moderator_factory(srv)
    try:
        with moderator_ws(srv, client) as mod:
            mod.request("hello")
            mod.drain(0.3 * SECOND)
            resume = dict(mod.last_seq)
        for _ in range(6):
            _ask(ctx, event_id, sample["speakers"]["moscow"][0].id)
        with moderator_ws(srv, client) as mod:
            hello = mod.request("hello", {"resume": resume})
            assert hello["payload"]["start"] == "snapshot"
            mod.drain(0.5 * SECOND)
            assert [m["payload"]["reason"] for m in mod.other] == ["too_far_behind"]
            assert len(mod.snapshots[0]["payload"]["questions"]) == 6
    finally:
        client.close()
        srv.stop()
