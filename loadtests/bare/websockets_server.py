"""The bare `websockets` baseline: no framework, no ASGI. Accept, read a hello, reply
with a hub-shaped reply and a snapshot-sized frame, then idle (per-message deflate
off, as the hub).

    python -m loadtests.bare.websockets_server --port 18311 [--snapshot-bytes 6000]

``GET /healthz`` answers 200 without upgrading (for readiness checks).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .common import hello_reply, raise_nofile, snapshot_frame


async def run(host: str, port: int, snapshot: str, max_size: int) -> None:
    ids = itertools.count(1)

    async def handler(ws: ServerConnection) -> None:
        try:
            hello = json.loads(await ws.recv())
            await ws.send(hello_reply(hello.get("id"), next(ids)))
            await ws.send(snapshot)
            async for _ in ws:  # idle: a viewer that asks nothing
                pass
        except ConnectionClosed:
            pass

    def health(connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/healthz":
            return connection.respond(HTTPStatus.OK, "ok\n")
        return None

    stop: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_signal() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, on_signal)
    kwargs: dict[str, Any] = {"compression": None, "max_size": max_size, "process_request": health}
    async with serve(handler, host, port, backlog=2048, **kwargs):
        await stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--snapshot-bytes", type=int, default=6000)
    parser.add_argument("--max-size", type=int, default=4 * 64 * 1024)
    args = parser.parse_args(argv)
    raise_nofile()
    asyncio.run(run(args.host, args.port, snapshot_frame(args.snapshot_bytes), args.max_size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
