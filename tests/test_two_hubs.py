"""Two hub processes (real `qa-service serve` servers) sharing one Redis and one database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from qa_service.security import Signer
from qa_service.settings import Settings

from .conftest import MOD_PASSWORD
from .support import SECOND, cookie_header, free_port, login, wait_until, ws_client

pytestmark = pytest.mark.integration


def _spawn(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        QA_DATABASE_URL=settings.effective_database_url,
        QA_REDIS_URL=settings.redis_url or "",
        QA_REDIS_PREFIX=settings.redis_prefix,
        QA_SECRET_KEY=settings.secret_key,
        QA_DATA_DIR=str(settings.data_dir),
        QA_PORT=str(port),
        QA_AUTO_MIGRATE="false",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "qa_service.cli", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def two_hubs(settings: Settings, event_id: int) -> Iterator[tuple[int, int]]:
    ports = (free_port(), free_port())
    procs = [_spawn(settings, p) for p in ports]
    try:
        for port, proc in zip(ports, procs, strict=True):
            wait_until(lambda p=port, pr=proc: _ready(p) or pr.poll() is not None, 30 * SECOND, f"hub on {port}")
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
            if proc.stderr:
                proc.stderr.close()


def test_viewer_on_one_hub_moderator_on_another_host_back_on_the_first(two_hubs, settings, sample) -> None:
    a, b = two_hubs
    studio = sample["studios"]["moscow"]
    speaker = sample["speakers"]["moscow"][1]
    token = Signer(settings.secret_key).host_token(studio.id, studio.host_token_version)
    mod_http = login(f"http://127.0.0.1:{b}", "mod1", MOD_PASSWORD)
    try:
        with (
            ws_client(f"ws://127.0.0.1:{a}/ws/viewer") as viewer,
            ws_client(
                f"ws://127.0.0.1:{b}/ws/moderator", additional_headers={"Cookie": cookie_header(mod_http)}
            ) as mod,
            ws_client(f"ws://127.0.0.1:{a}/ws/host?token={token}") as host,
        ):
            for c in (viewer, mod, host):
                assert c.request("hello")["ok"]
            mod.drain(0.3 * SECOND)
            host.drain(0.3 * SECOND)
            asked_at = time.monotonic()
            reply = viewer.request(
                "question.ask",
                {"client_id": uuid.uuid4().hex, "speaker_id": speaker.id, "text": "Across hubs?", "language": "en"},
            )
            assert reply["ok"], reply
            qid = reply["payload"]["question"]["id"]
            seen = mod.wait_event(lambda e: e["type"] == "question.created" and e["payload"]["id"] == qid, 1 * SECOND)
            assert time.monotonic() - asked_at < 1.0 * SECOND
            assert seen["payload"]["status"] == "pending"

            r = mod_http.post(f"/api/questions/{qid}/approve", json={"version": seen["payload"]["version"]})
            assert r.status_code == 200, r.text
            up = host.wait_event(lambda e: e["type"] == "queue.upsert" and e["payload"]["id"] == qid, 1 * SECOND)
            assert up["payload"]["text"] == "Across hubs?"
            viewer.wait_event(lambda e: e["payload"].get("status") == "approved", 1 * SECOND)
    finally:
        mod_http.close()


def test_both_hubs_number_events_the_same(two_hubs, settings, sample) -> None:
    a, b = two_hubs
    speaker = sample["speakers"]["moscow"][1]
    clients: list[Any] = []
    try:
        https = [login(f"http://127.0.0.1:{p}", "mod1", MOD_PASSWORD) for p in (a, b)]
        clients.extend(https)
        with (
            ws_client(f"ws://127.0.0.1:{a}/ws/moderator", additional_headers={"Cookie": cookie_header(https[0])}) as m1,
            ws_client(f"ws://127.0.0.1:{b}/ws/moderator", additional_headers={"Cookie": cookie_header(https[1])}) as m2,
            ws_client(f"ws://127.0.0.1:{a}/ws/viewer") as v1,
            ws_client(f"ws://127.0.0.1:{b}/ws/viewer") as v2,
        ):
            for c in (m1, m2, v1, v2):
                c.request("hello")
            for i in range(5):
                for v in (v1, v2):
                    payload = {
                        "client_id": uuid.uuid4().hex,
                        "speaker_id": speaker.id,
                        "text": f"Q{i}",
                        "language": "en",
                    }
                    assert v.request("question.ask", payload)["ok"]
            for m in (m1, m2):
                wait_until(
                    lambda m=m: (m.pump(0.1), len([e for e in m.events if e["type"] == "question.created"]) == 10)[1]
                )
            seqs = [
                [(e["seq"], e["payload"]["id"]) for e in m.events if e["channel"] == "moderation"] for m in (m1, m2)
            ]
            assert seqs[0] == seqs[1]
    finally:
        for c in clients:
            c.close()
