"""The bare Starlette baseline: the least a Starlette + uvicorn server does for each
figure of the bench, with the hub's own uvicorn options (websockets-sansio,
per-message deflate off, the same frame cap and log level).

    python -m loadtests.bare.starlette_server --port 18310 [--redis URL] [--db URL]
        [--snapshot-bytes 6000] [--uvicorn-options JSON]

* ``/ws/viewer``, ``/ws/moderator``, ``/ws/host``: accept, read a hello, reply with a
  hub-shaped reply and a snapshot-sized frame, then idle. ``question.ask`` does the
  durable work of a question, each in its own transaction: one INSERT (SQLite with the
  hub's pragmas: WAL, synchronous=NORMAL, BEGIN IMMEDIATE, writers queued on a lock; or
  PostgreSQL) and one Redis XADD, in a worker thread as the hub does, then replies; moderator sockets are sent a
  ``question.created`` event.
* ``POST /api/questions/{id}/approve``: an UPDATE in its own transaction + XADD, then a
  ``queue.upsert`` to host sockets.
* ``POST /broadcast`` ``{"bytes": N, "type": "segment.updated"}``: one message of N bytes to
  every viewer socket in a plain loop (started in the background; the reply comes at once).
* ``GET /readyz``: a Redis PING (or nothing without Redis); ``GET /healthz``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from .common import hello_reply, padded, raise_nofile, snapshot_frame

# The hub's uvicorn options (qa_service/server.py uvicorn_kwargs); the bench passes the
# hub's current ones with --uvicorn-options, so a change there is followed here.
DEFAULT_UVICORN = {
    "ws": "websockets-sansio",
    "ws_per_message_deflate": False,
    "ws_max_size": 4 * 64 * 1024,
    "proxy_headers": False,
    "server_header": False,
    "log_level": "info",
}
STREAM_MAXLEN = 2000  # the hub keeps QA_HISTORY_SIZE events per channel
DB_THREADS = 30  # the hub's PostgreSQL pool: 10 + 20 overflow


class Store:
    """One INSERT or UPDATE per call, in its own transaction, then an XADD."""

    def __init__(self, db_url: str | None, redis_url: str | None, synchronous: str) -> None:
        self.db_url = db_url
        self.synchronous = synchronous
        self.local = threading.local()
        # SQLite has one writer at a time: writers queue on a lock here rather than in
        # SQLite's busy handler, whose sleeps (up to 100 ms) would only add tail latency.
        self.write_lock = threading.Lock()
        self.redis = None
        if redis_url:
            import redis

            self.redis = redis.Redis.from_url(redis_url, socket_timeout=5, max_connections=DB_THREADS + 10)

    @property
    def postgres(self) -> bool:
        return bool(self.db_url and self.db_url.startswith("postgresql"))

    def _conn(self) -> Any:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            if self.postgres:
                import psycopg

                conn = psycopg.connect(self.db_url or "")
            else:
                path = (self.db_url or "").split("///", 1)[-1]
                conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={self.synchronous}")
            self.local.conn = conn
        return conn

    def create(self) -> None:
        if not self.db_url:
            return
        conn = self._conn()
        if self.postgres:
            with conn.transaction():
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS bare_question (id BIGSERIAL PRIMARY KEY, client_id TEXT UNIQUE, "
                    "viewer_id TEXT, text TEXT, status TEXT, version INT, created_at DOUBLE PRECISION)"
                )
        else:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS bare_question (id INTEGER PRIMARY KEY, client_id TEXT UNIQUE, "
                "viewer_id TEXT, text TEXT, status TEXT, version INT, created_at REAL)"
            )

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        conn = self._conn()
        if self.postgres:
            with conn.transaction():
                row = conn.execute(sql + " RETURNING id", params).fetchone()
            return int(row[0]) if row else 0
        with self.write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.execute(sql, params)
                rowid = cur.lastrowid if sql.startswith("INSERT") else params[-1]
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return int(rowid or 0)

    def _publish(self, kind: str, payload: dict[str, Any]) -> None:
        if self.redis is not None:
            self.redis.xadd("bare:events", {"type": kind, "payload": json.dumps(payload)}, maxlen=STREAM_MAXLEN)

    def insert(self, client_id: str, viewer_id: str, text: str) -> dict[str, Any]:
        ph = "%s" if self.postgres else "?"
        qid = self._write(
            f"INSERT INTO bare_question (client_id, viewer_id, text, status, version, created_at) "
            f"VALUES ({ph}, {ph}, {ph}, 'pending', 1, {ph})",
            (client_id, viewer_id, text, time.time()),
        )
        question = {"id": qid, "client_id": client_id, "text": text, "status": "received", "version": 1}
        self._publish("question.created", question)
        return question

    def approve(self, qid: int) -> dict[str, Any]:
        ph = "%s" if self.postgres else "?"
        self._write(f"UPDATE bare_question SET status = 'queued', version = version + 1 WHERE id = {ph}", (qid,))
        question = {"id": qid, "status": "queued"}
        self._publish("queue.upsert", question)
        return question


class Bare:
    def __init__(self, store: Store, snapshot: str) -> None:
        self.store = store
        self.snapshot = snapshot
        self.groups: dict[str, set[WebSocket]] = {"viewer": set(), "moderator": set(), "host": set()}
        self.ids = itertools.count(1)
        self.seq = itertools.count(1)
        self.limiter = CapacityLimiter(DB_THREADS)
        self.broadcasts: set[asyncio.Task[None]] = set()

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    async def send_all(self, role: str, text: str) -> None:
        """A plain loop (measured faster and steadier than gather over all sends)."""
        for ws in list(self.groups[role]):
            try:
                await ws.send_text(text)
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.groups[role].discard(ws)

    def event(self, kind: str, channel: str, payload: dict[str, Any]) -> str:
        return json.dumps({"type": kind, "channel": channel, "seq": next(self.seq), "payload": payload})

    async def socket(self, ws: WebSocket) -> None:
        role = ws.url.path.rsplit("/", 1)[-1]
        role = role if role in self.groups else "viewer"
        await ws.accept()
        viewer = f"{next(self.ids):032x}"
        try:
            hello = json.loads(await ws.receive_text())
            await ws.send_text(hello_reply(hello.get("id"), int(viewer, 16)))
            await ws.send_text(self.snapshot)
            self.groups[role].add(ws)
            while True:
                req = json.loads(await ws.receive_text())
                rid, kind, payload = req.get("id"), req.get("type"), req.get("payload") or {}
                if kind == "question.ask":
                    q = await self.run(self.store.insert, str(payload["client_id"]), viewer, str(payload["text"]))
                    await self.send_all("moderator", self.event("question.created", "moderation", q))
                    reply = {"question": q, "duplicate": False}
                else:
                    reply = {"pong": True}
                await ws.send_text(json.dumps({"type": "reply", "id": rid, "ok": True, "payload": reply}))
        except WebSocketDisconnect:
            pass
        finally:
            self.groups[role].discard(ws)

    async def approve(self, request: Request) -> JSONResponse:
        q = await self.run(self.store.approve, int(request.path_params["qid"]))
        await self.send_all("host", self.event("queue.upsert", "studio:1", q))
        return JSONResponse(q)

    async def broadcast(self, request: Request) -> JSONResponse:
        body = await request.json()
        text = padded(
            {"type": body.get("type", "segment.updated"), "channel": "schedule", "seq": next(self.seq)},
            int(body.get("bytes", 300)),
        )
        task = asyncio.create_task(self.send_all("viewer", text))
        self.broadcasts.add(task)
        task.add_done_callback(self.broadcasts.discard)
        return JSONResponse({"sockets": len(self.groups["viewer"])})

    async def ready(self, request: Request) -> JSONResponse:
        if self.store.redis is not None:
            await self.run(self.store.redis.ping)
        return JSONResponse({"status": "ready", "sockets": sum(len(g) for g in self.groups.values())})

    def app(self) -> Starlette:
        async def health(request: Request) -> JSONResponse:
            return JSONResponse({"status": "ok"})

        return Starlette(
            routes=[
                Route("/healthz", health),
                Route("/readyz", self.ready),
                Route("/broadcast", self.broadcast, methods=["POST"]),
                Route("/api/questions/{qid:int}/approve", self.approve, methods=["POST"]),
                WebSocketRoute("/ws/viewer", self.socket),
                WebSocketRoute("/ws/moderator", self.socket),
                WebSocketRoute("/ws/host", self.socket),
            ]
        )


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", help="redis://… for the XADD of each write")
    parser.add_argument("--db", help="sqlite:///PATH or postgresql://… for the INSERT of each question")
    parser.add_argument("--sqlite-synchronous", default="NORMAL", choices=["OFF", "NORMAL", "FULL"])
    parser.add_argument("--snapshot-bytes", type=int, default=6000)
    parser.add_argument("--uvicorn-options", default=json.dumps(DEFAULT_UVICORN))
    args = parser.parse_args(argv)
    raise_nofile()
    store = Store(args.db, args.redis, args.sqlite_synchronous)
    store.create()
    bare = Bare(store, snapshot_frame(args.snapshot_bytes))
    options = json.loads(args.uvicorn_options)
    uvicorn.run(bare.app(), host=args.host, port=args.port, **options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
