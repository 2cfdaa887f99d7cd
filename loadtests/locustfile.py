"""Viewers, a moderator and a studio host over the websocket protocol, for Locust.
Locust has no websocket user: each user below fires Locust request events itself.

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8791 \\
        --headless -u 200 -r 20 -t 60s --csv loadtests/results/locust

(README, "Load tests and benchmarks", starts the hub this expects: the sample event
live, the rate limits raised, a moderator account and the host link in the environment.)

* ``Viewer`` (all users but two): /ws/viewer, hello (+ snapshot: "connect"), then asks a
  live speaker every 2-6 s ("ask": send → the committed ack); when the question's status
  changes later (approved, not_selected, on_air, answered) fires "status <status>", timed
  from the ack.
* ``Moderator`` (one): logs in over REST ($LOCUST_MOD_USER / $LOCUST_MOD_PASSWORD),
  holds the console socket /ws/moderator ("question.created → console": from the
  question's creation to its arrival) and approves or rejects what arrives over REST
  ("POST approve", "POST reject").
* ``Host`` (one, if $LOCUST_HOST_TOKEN holds a studio's host-link token): /ws/host, and
  "host.next" every 3-8 s (the next queued question goes on air; "host.next (queue empty)"
  when there is none).

Only ever point it at a server you run yourself, on loopback.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import gevent
import httpx
from gevent.event import AsyncResult
from locust import User, between, events, task
from locust.exception import StopUser
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

QUESTIONS = [
    "How long will the new plant take to build?",
    "What is the payback period of the project?",
    "Do you export to Europe?",
    "How much water does the mine use?",
]
REPLY_TIMEOUT = 30.0


def fire(name: str, started: float, error: str | None = None, kind: str = "WS", length: int = 0) -> None:
    events.request.fire(
        request_type=kind,
        name=name,
        response_time=(time.perf_counter() - started) * 1000,
        response_length=length,
        exception=Exception(error) if error else None,
        context={},
    )


class SocketUser(User):
    """One websocket: a reader greenlet matches replies to requests by id and hands
    every other frame to ``on_frame``."""

    abstract = True
    path = "/ws/viewer"

    def connect(self, path: str, **kwargs: Any) -> None:
        self.pending: dict[str, AsyncResult] = {}
        url = self.host.replace("http", "ws", 1).rstrip("/") + path
        t0 = time.perf_counter()
        self.ws: ClientConnection = connect(url, compression=None, open_timeout=10, max_size=2**22, **kwargs)
        self.reader = gevent.spawn(self._read)
        reply = self.request("hello", {}, name=None)
        fire("connect", t0, None if reply.get("ok") else str(reply.get("error")))
        self.hello = reply.get("payload") or {}

    def on_stop(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
            self.reader.join(timeout=5)

    def _read(self) -> None:
        try:
            for raw in self.ws:
                msg = json.loads(raw)
                if msg.get("type") == "reply" and msg.get("id") in self.pending:
                    self.pending.pop(msg["id"]).set(msg)
                else:
                    self.on_frame(msg)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else 1006
            if code not in (1000, 1001):
                fire("socket closed", time.perf_counter(), f"closed with {code}")

    def on_frame(self, msg: dict[str, Any]) -> None:
        pass

    def request(self, type_: str, payload: dict[str, Any], name: str | None = "") -> dict[str, Any]:
        """Send a request and wait for its reply; fire it under ``name`` (default the type; None: not at all)."""
        rid = uuid.uuid4().hex[:12]
        result = AsyncResult()
        self.pending[rid] = result
        t0 = time.perf_counter()
        self.ws.send(json.dumps({"type": type_, "id": rid, "payload": payload}))
        try:
            reply: dict[str, Any] = result.get(timeout=REPLY_TIMEOUT)
        except gevent.Timeout:
            self.pending.pop(rid, None)
            if name is not None:
                fire(name or type_, t0, "no reply")
            return {"ok": False, "error": {"code": "timeout"}}
        if name is not None:
            error = None if reply.get("ok") else (reply.get("error") or {}).get("code")
            fire(name or type_, t0, error)
        return reply


class Viewer(SocketUser):
    wait_time = between(2, 6)

    def on_start(self) -> None:
        self.asked: dict[int, tuple[float, str]] = {}  # question id → (ack time, last status)
        self.connect("/ws/viewer")
        snap = self.request("snapshot", {}, name=None).get("payload") or {}
        schedule = snap.get("schedule") or {}
        live = {s["id"] for s in schedule.get("segments", []) if s["status"] == "live"}
        self.speakers = [sp["id"] for sp in schedule.get("speakers", []) if sp["segment_id"] in live]

    def on_frame(self, msg: dict[str, Any]) -> None:
        if msg.get("type") != "question.updated":
            return
        q = msg.get("payload") or {}
        seen = self.asked.get(q.get("id", -1))
        if seen is not None and q.get("status") != seen[1]:
            self.asked[q["id"]] = (seen[0], q["status"])
            fire(f"status {q['status']}", seen[0])

    @task
    def ask(self) -> None:
        if not self.speakers:
            return
        payload = {
            "client_id": uuid.uuid4().hex,
            "speaker_id": random.choice(self.speakers),
            "text": random.choice(QUESTIONS),
            "language": "en",
        }
        reply = self.request("question.ask", payload, name="ask")
        if reply.get("ok"):
            q = reply["payload"]["question"]
            self.asked[q["id"]] = (time.perf_counter(), q["status"])


class Moderator(SocketUser):
    fixed_count = 1
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        self.waiting: list[dict[str, Any]] = []
        user = os.environ.get("LOCUST_MOD_USER", "loadmod")
        password = os.environ.get("LOCUST_MOD_PASSWORD", "load-password")
        self.http = httpx.Client(base_url=self.host, timeout=REPLY_TIMEOUT)
        t0 = time.perf_counter()
        r = self.http.post("/api/login", json={"username": user, "password": password})
        fire("POST login", t0, None if r.status_code == 200 else f"{r.status_code} {r.text[:200]}", "REST")
        if r.status_code != 200:
            raise StopUser
        self.http.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        self.connect("/ws/moderator", origin=self.host.rstrip("/"), additional_headers={"Cookie": cookie})

    def on_stop(self) -> None:
        super().on_stop()
        if getattr(self, "http", None) is not None:
            self.http.close()

    def on_frame(self, msg: dict[str, Any]) -> None:
        if msg.get("type") != "question.created":
            return
        q = msg.get("payload") or {}
        created = datetime.fromisoformat(q["created_at"].replace("Z", "+00:00"))
        lag = (datetime.now(UTC) - created).total_seconds()
        fire("question.created → console", time.perf_counter() - lag)
        if q.get("status") == "pending":
            self.waiting.append(q)

    def _act(self, action: str, body: dict[str, Any]) -> None:
        if not self.waiting:
            return
        q = self.waiting.pop(0)
        t0 = time.perf_counter()
        r = self.http.post(f"/api/questions/{q['id']}/{action}", json={"version": q["version"], **body})
        fire(f"POST {action}", t0, None if r.status_code == 200 else f"{r.status_code} {r.text[:200]}", "REST")

    @task(3)
    def approve(self) -> None:
        self._act("approve", {})

    @task(1)
    def reject(self) -> None:
        self._act("reject", {"reason": "off_topic"})


class Host(SocketUser):
    fixed_count = 1
    wait_time = between(3, 8)

    def on_start(self) -> None:
        token = os.environ.get("LOCUST_HOST_TOKEN")
        if not token:
            raise StopUser  # no host link given: no host display
        self.connect(f"/ws/host?token={token}")

    @task
    def next_question(self) -> None:
        t0 = time.perf_counter()
        reply = self.request("host.next", {}, name=None)
        code = (reply.get("error") or {}).get("code")
        if code == "queue.empty":
            fire("host.next (queue empty)", t0)  # the queue ran dry: not a failure
        else:
            fire("host.next", t0, code)
