"""Helpers shared by the tests: timeouts, a real server in a thread, socket clients."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from websockets.sync.client import ClientConnection, connect

# Every wait in the suite is a multiple of this; slow machines set QA_TEST_TIMEOUT_SCALE.
SCALE = float(os.environ.get("QA_TEST_TIMEOUT_SCALE", "1"))
SECOND = 1.0 * SCALE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float = 5 * SECOND, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")


class ThreadServer:
    """A real uvicorn server (websockets-sansio, as in production) in a thread."""

    def __init__(self, app: Any, port: int, **kwargs: Any) -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            ws="websockets-sansio",
            ws_per_message_deflate=False,
            ws_max_size=kwargs.pop("ws_max_size", 256 * 1024),
            log_level=kwargs.pop("log_level", "warning"),
            lifespan="on",
            **kwargs,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.base = f"http://127.0.0.1:{port}"
        self.ws_base = f"ws://127.0.0.1:{port}"

    def start(self) -> ThreadServer:
        self.thread.start()
        wait_until(lambda: self.server.started, 20 * SECOND, "server start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20 * SECOND)


def start_server(settings: Any, port: int | None = None, **kwargs: Any) -> ThreadServer:
    """create_app(settings) on a real server at ``port``; the app is told its port,
    since its Origin allow-list and CSP name the origin it serves."""
    from qa_service.app import create_app
    from qa_service.server import guarded_http_protocol

    port = port or free_port()
    settings = settings.model_copy(update={"port": port})
    # The production server stack: guarded HTTP protocol, uvicorn's own proxy-header trust off.
    kwargs.setdefault("http", guarded_http_protocol(settings))
    kwargs.setdefault("proxy_headers", False)
    return ThreadServer(create_app(settings), port, **kwargs).start()


class WsClient:
    """A protocol client written from docs/protocol.md: requests with ids,
    replies matched by id, events kept in order with their sequence numbers."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.replies: dict[str, dict[str, Any]] = {}
        self.reply_log: list[dict[str, Any]] = []
        self.snapshots: list[dict[str, Any]] = []
        self.other: list[dict[str, Any]] = []
        self.last_seq: dict[str, int] = {}
        self._n = 0

    def send_raw(self, data: str | bytes) -> None:
        self.ws.send(data)

    def pump(self, timeout: float = 0.05) -> bool:
        try:
            raw = self.ws.recv(timeout=timeout)
        except TimeoutError:
            return False
        msg = json.loads(raw)
        if msg["type"] == "reply":
            self.reply_log.append(msg)
            self.replies[msg["id"] if msg["id"] is not None else f"none-{len(self.replies)}"] = msg
        elif msg["type"] == "snapshot":
            self.snapshots.append(msg)
            self.last_seq.update(msg["seq"])
        elif "seq" in msg:
            self.events.append(msg)
            self.last_seq[msg["channel"]] = msg["seq"]
        else:
            self.other.append(msg)
        return True

    def request(self, type_: str, payload: dict[str, Any] | None = None, timeout: float = 5 * SECOND) -> dict[str, Any]:
        self._n += 1
        rid = f"r{self._n}"
        self.ws.send(json.dumps({"type": type_, "id": rid, "payload": payload or {}}))
        deadline = time.monotonic() + timeout
        while rid not in self.replies:
            if time.monotonic() > deadline:
                raise AssertionError(f"no reply to {type_} within {timeout}s")
            self.pump(0.1)
        return self.replies.pop(rid)

    def wait_event(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5 * SECOND) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for e in self.events[seen:]:
                if predicate(e):
                    return e
            seen = len(self.events)
            if time.monotonic() > deadline:
                raise AssertionError(f"event not received within {timeout}s; got {[e['type'] for e in self.events]}")
            self.pump(0.1)

    def drain(self, duration: float = 0.3 * SECOND) -> None:
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            self.pump(0.05)

    def next_reply(self, timeout: float = 5 * SECOND) -> dict[str, Any]:
        """The next reply to arrive, whatever its id (for frames that have none)."""
        seen = len(self.reply_log)
        wait_until(lambda: (self.pump(0.1), len(self.reply_log) > seen)[1], timeout, "a reply")
        return self.reply_log[seen]


def origin_of(url: str) -> Any:
    """The Origin a browser sends for a socket to ``url``: ws://h:p/x → http://h:p."""
    scheme, rest = url.split("://", 1)
    return ("https" if scheme == "wss" else "http") + "://" + rest.split("/", 1)[0]


@contextmanager
def ws_client(url: str, **kwargs: Any) -> Iterator[WsClient]:
    """Like a browser, send the Origin of the pages this server serves (unless told otherwise)."""
    kwargs.setdefault("origin", origin_of(url))
    with connect(
        url, open_timeout=10 * SECOND, close_timeout=2 * SECOND, max_size=2**22, compression=None, **kwargs
    ) as ws:
        yield WsClient(ws)


def login(base: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10 * SECOND)
    r = client.post("/api/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


def cookie_header(client: httpx.Client) -> str:
    return "; ".join(f"{k}={v}" for k, v in client.cookies.items())
