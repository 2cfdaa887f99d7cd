"""A reconnect storm: hundreds of viewers say hello at the same moment."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from websockets.asyncio.client import connect

from ..support import SECOND, start_server

pytestmark = pytest.mark.integration
VIEWERS = 300


async def _hello(url: str, n: int) -> list[dict[str, Any]]:
    async with connect(url, open_timeout=60 * SECOND, compression=None) as ws:
        await ws.send(json.dumps({"type": "hello", "id": f"h{n}", "payload": {}}))
        got: list[dict[str, Any]] = []
        while not any(m["type"] == "snapshot" for m in got):
            got.append(json.loads(await asyncio.wait_for(ws.recv(), 60 * SECOND)))
            if got[-1]["type"] == "reply" and not got[-1]["ok"]:
                break
        return got


def test_three_hundred_viewers_greeted_at_once_all_get_a_snapshot_and_no_error(settings_factory, event_id) -> None:

    # A Redis pool far smaller than the storm: requests must wait for a connection, not fail.
    srv = start_server(settings_factory(redis_max_connections=4))

    async def storm() -> list[list[dict[str, Any]]]:
        url = srv.ws_base + "/ws/viewer"
        return await asyncio.gather(*(_hello(url, n) for n in range(VIEWERS)))

    # Its own thread and loop: the browser tests' Playwright may hold this thread's loop.
    results: list[list[list[dict[str, Any]]]] = []
    runner = threading.Thread(target=lambda: results.append(asyncio.run(storm())))
    try:
        runner.start()
        runner.join(120 * SECOND)
    finally:
        srv.stop()
    assert results, "the storm did not finish"
    sessions = results[0]
    errors = [m for s in sessions for m in s if m["type"] == "reply" and not m["ok"]]
    assert errors == []
    assert all(s[0]["type"] == "reply" and s[0]["ok"] and s[-1]["type"] == "snapshot" for s in sessions)
    assert len({s[0]["payload"]["viewer_id"] for s in sessions}) == VIEWERS
