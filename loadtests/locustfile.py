"""Viewers asking questions over the websocket, for Locust.

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000 \
        --headless -u 200 -r 20 -t 60s --csv loadtests/results/ask

Each simulated viewer opens /ws/viewer, says hello, and asks a question every
few seconds to a live speaker; "ask" is timed from send to the committed ack.
Only ever point it at a server you run yourself, on loopback.
"""

from __future__ import annotations

import json
import random
import time
import uuid

from locust import User, between, events, task
from websockets.sync.client import connect

QUESTIONS = [
    "How long will the new plant take to build?",
    "What is the payback period of the project?",
    "Do you export to Europe?",
    "How much water does the mine use?",
]


class Viewer(User):
    wait_time = between(2, 6)

    def on_start(self) -> None:
        url = self.host.replace("http", "ws", 1).rstrip("/") + "/ws/viewer"
        t0 = time.perf_counter()
        self._conn = connect(url, compression=None, open_timeout=10)
        self.ws = self._conn.__enter__()
        self.request("hello", {})
        self.speakers = self._live_speakers()
        self._fire("connect", t0, None)

    def on_stop(self) -> None:
        self._conn.__exit__(None, None, None)

    def _live_speakers(self) -> list[int]:
        self.request("snapshot", {})
        snap = self.last_reply["payload"]["schedule"]
        live = {s["id"] for s in snap["segments"] if s["status"] == "live"}
        return [sp["id"] for sp in snap["speakers"] if sp["segment_id"] in live]

    def request(self, type_: str, payload: dict) -> dict:
        rid = uuid.uuid4().hex[:12]
        self.ws.send(json.dumps({"type": type_, "id": rid, "payload": payload}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("type") == "reply" and msg.get("id") == rid:
                self.last_reply = msg
                return msg

    def _fire(self, name: str, t0: float, error: str | None) -> None:
        events.request.fire(
            request_type="WS",
            name=name,
            response_time=(time.perf_counter() - t0) * 1000,
            response_length=0,
            exception=Exception(error) if error else None,
            context={},
        )

    @task
    def ask(self) -> None:
        if not self.speakers:
            return
        t0 = time.perf_counter()
        reply = self.request(
            "question.ask",
            {
                "client_id": uuid.uuid4().hex,
                "speaker_id": random.choice(self.speakers),
                "text": random.choice(QUESTIONS),
                "language": "en",
            },
        )
        error = None if reply["ok"] else reply["error"]["code"]
        self._fire("ask", t0, None if error == "rate.limited" else error)
