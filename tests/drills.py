"""Clients for fault drills, written from docs/protocol.md: a moderator console
that mirrors the question list and reconnects like the browser does, and askers
that resend by client_id until acknowledged (so nothing acknowledged is lost and
nothing is stored twice)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

from .support import SECOND, origin_of


class ConsoleMirror(threading.Thread):
    """A moderator socket that keeps {question id: version} as a console would:
    the snapshot replaces it, question events update it; reconnects with resume."""

    def __init__(self, url: str, cookie: str) -> None:
        super().__init__(daemon=True)
        self.url, self.cookie = url, cookie
        self.state: dict[int, int] = {}
        self.last: dict[str, int] = {}
        self.closes: list[int | None] = []
        self.resyncs: list[str] = []
        self.resync_times: list[float] = []
        self.snapshots = 0
        self.errors: list[dict[str, Any]] = []
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()

    def view(self) -> dict[int, int]:
        with self.lock:
            return dict(self.state)

    def run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                with connect(
                    self.url,
                    additional_headers={"Cookie": self.cookie},
                    origin=origin_of(self.url),
                    open_timeout=5 * SECOND,
                    compression=None,
                ) as ws:
                    hello: dict[str, Any] = {"resume": dict(self.last)} if self.last else {}
                    ws.send(json.dumps({"type": "hello", "id": "h", "payload": hello}))
                    while not self.stop_flag.is_set():
                        try:
                            raw = ws.recv(timeout=0.2)
                        except TimeoutError:
                            continue
                        self._apply(json.loads(raw))
            except ConnectionClosed as exc:
                self.closes.append(exc.rcvd.code if exc.rcvd else None)
            except (OSError, InvalidHandshake, TimeoutError):
                self.closes.append(None)
            time.sleep(0.3)

    def _apply(self, msg: dict[str, Any]) -> None:
        with self.lock:
            if msg["type"] == "snapshot":
                self.snapshots += 1
                self.last = dict(msg["seq"])
                self.state = {q["id"]: q["version"] for q in msg["payload"]["questions"]}
            elif msg["type"] == "resync":
                self.resyncs.append(msg["payload"]["reason"])
                self.resync_times.append(time.monotonic())
            elif msg["type"] == "reply":
                if not msg["ok"]:
                    self.errors.append(msg["error"])
            elif "seq" in msg:
                self.last[msg["channel"]] = msg["seq"]
                if msg["type"] in ("question.created", "question.updated"):
                    q = msg["payload"]
                    self.state[q["id"]] = max(self.state.get(q["id"], 0), q["version"])

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(10 * SECOND)


class Asker(threading.Thread):
    """Asks question after question; an unanswered ask is resent with the same
    client_id on a new socket until acknowledged. Records every acknowledgement."""

    def __init__(self, urls: list[str], speaker_id: int) -> None:
        super().__init__(daemon=True)
        self.urls, self.speaker_id = urls, speaker_id
        self.acked: dict[str, int] = {}  # client_id -> question id
        self.ack_times: list[float] = []
        self.error_codes: list[str] = []
        self.unacked: list[str] = []
        self.stop_flag = threading.Event()
        self._token: str | None = None
        self._n = 0

    def _hello(self, ws: ClientConnection) -> None:
        ws.send(json.dumps({"type": "hello", "id": "h", "payload": {"viewer_token": self._token}}))
        while True:
            msg = json.loads(ws.recv(timeout=10 * SECOND))
            if msg["type"] == "reply" and msg["id"] == "h":
                if not msg["ok"]:
                    raise OSError(f"hello refused: {msg['error']}")
                self._token = msg["payload"]["viewer_token"]
                return

    def _ask(self, ws: ClientConnection, client_id: str) -> bool:
        payload = {
            "client_id": client_id,
            "speaker_id": self.speaker_id,
            "text": f"Drill {client_id}?",
            "language": "en",
        }
        ws.send(json.dumps({"type": "question.ask", "id": client_id, "payload": payload}))
        while True:
            msg = json.loads(ws.recv(timeout=10 * SECOND))
            if msg["type"] == "reply" and msg["id"] == client_id:
                if msg["ok"]:
                    self.acked[client_id] = msg["payload"]["question"]["id"]
                    self.ack_times.append(time.monotonic())
                    return True
                self.error_codes.append(msg["error"]["code"])
                time.sleep(0.2)
                return False

    def run(self) -> None:
        """Ask until stopped; the last question is resent until acknowledged
        (or given up 30 s after the stop, recorded in ``unacked``)."""
        client_id = uuid.uuid4().hex
        give_up: float | None = None
        done = False
        while not done:
            url = self.urls[self._n % len(self.urls)]
            self._n += 1
            try:
                with connect(url, open_timeout=5 * SECOND, compression=None) as ws:
                    self._hello(ws)
                    while True:
                        if self.stop_flag.is_set() and give_up is None:
                            give_up = time.monotonic() + 30 * SECOND
                        if give_up is not None and time.monotonic() > give_up:
                            self.unacked.append(client_id)
                            done = True
                            break
                        if self._ask(ws, client_id):
                            if self.stop_flag.is_set():
                                done = True
                                break
                            client_id = uuid.uuid4().hex
                            time.sleep(0.05)
            except (ConnectionClosed, OSError, InvalidHandshake, TimeoutError):
                if give_up is not None and time.monotonic() > give_up:
                    self.unacked.append(client_id)
                    done = True
                time.sleep(0.3)

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(60 * SECOND)
