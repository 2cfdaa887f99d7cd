"""Rate limits that hold: a sliding window shared by every hub through Redis,
exact at window boundaries, telling the client how long to wait."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from qa_service import ratelimit
from qa_service.hub.hub import Hub
from qa_service.ratelimit import RateLimited
from qa_service.settings import Settings

from ..support import SECOND, start_server, ws_client

pytestmark = pytest.mark.integration


def _hub(redis_url: str, prefix: str, tmp_path: Path) -> tuple[Hub, aioredis.Redis]:
    """A hub object for its limiter only (no database, nothing started)."""
    settings = Settings(data_dir=tmp_path, redis_url=redis_url, redis_prefix=prefix, secret_key="k" * 40)
    client = aioredis.Redis.from_url(redis_url)
    return Hub(settings, None, client), client  # type: ignore[arg-type]


def _run(redis_url: str, tmp_path: Path, body: Callable[[list[Hub]], Awaitable[Any]], hubs: int = 1) -> Any:
    """Run ``body`` with ``hubs`` hub objects sharing one Redis prefix (as hub processes do)."""
    prefix = f"t{uuid.uuid4().hex[:10]}"

    async def main() -> Any:
        made = [_hub(redis_url, prefix, tmp_path) for _ in range(hubs)]
        try:
            return await body([h for h, _ in made])
        finally:
            for _, client in made:
                await client.aclose()

    # In a thread of its own: the browser tests' Playwright keeps an event loop
    # running in the main thread for the whole session.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


async def _allowed(hub: Hub, key: str, limit: int, window: float) -> float:
    """0.0 if the hit passed, else its retry_after."""
    try:
        await hub.limit(key, limit, window)
    except RateLimited as exc:
        assert exc.code == "rate.limited" and exc.status == 429
        return float(exc.details["retry_after"])  # type: ignore[arg-type]
    return 0.0


def _sleep_until_fraction(lo: float, hi: float, period: float = 1.0) -> None:
    """Sleep until the wall clock is between ``lo`` and ``hi`` of a ``period``-second slot."""
    while not lo <= time.time() % period < hi:
        time.sleep(0.005)


def test_twice_the_limit_across_a_window_boundary_does_not_pass(redis_url, tmp_path) -> None:
    """A fixed one-second window would let 5 through just before the second turns
    and 5 more just after; a sliding window lets only 5 through in any second."""
    limit, window = 5, 1.0

    async def body(hubs: list[Hub]) -> None:
        hub = hubs[0]
        _sleep_until_fraction(0.70, 0.75)  # just before a boundary of the wall clock
        first = time.monotonic()
        before = [await _allowed(hub, "burst", limit, window) for _ in range(limit)]
        _sleep_until_fraction(0.05, 0.10)  # just after it
        now = time.monotonic()
        after = [await _allowed(hub, "burst", limit, window) for _ in range(limit)]
        assert before == [0.0] * limit
        assert all(wait > 0 for wait in after), after
        # retry_after: until the first hit leaves the window (give or take the test's own steps)
        expected = first + window - now
        assert expected - 0.1 <= after[0] <= expected + 0.1, (after[0], expected)
        await asyncio.sleep(after[-1])
        assert await _allowed(hub, "burst", limit, window) == 0.0

    _run(redis_url, tmp_path, body)


def test_retry_after_is_the_time_until_the_oldest_hit_leaves_the_window(redis_url, tmp_path) -> None:
    async def body(hubs: list[Hub]) -> None:
        hub = hubs[0]
        start = time.monotonic()
        for at in (0.0, 0.5, 1.0):
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            assert await _allowed(hub, "k", 3, 2.0) == 0.0
        await asyncio.sleep(max(0.0, start + 1.2 - time.monotonic()))
        wait = await _allowed(hub, "k", 3, 2.0)
        assert 0.7 <= wait <= 0.85, wait  # the hit at 0.0 leaves at 2.0
        await asyncio.sleep(wait)
        assert await _allowed(hub, "k", 3, 2.0) == 0.0  # it slid: one more, at ≈2.0
        wait = await _allowed(hub, "k", 3, 2.0)
        assert 0.4 <= wait <= 0.55, wait  # now the hit at 0.5 is the oldest: it leaves at 2.5

    _run(redis_url, tmp_path, body)


def test_hub_processes_share_one_count(redis_url, tmp_path) -> None:
    async def body(hubs: list[Hub]) -> list[float]:
        return [await _allowed(hubs[i % 3], "shared", 6, 60) for i in range(12)]

    results = _run(redis_url, tmp_path, body, hubs=3)
    assert results[:6] == [0.0] * 6
    assert all(r > 0 for r in results[6:])


def test_without_redis_each_process_still_limits(tmp_path, caplog) -> None:
    dead = "redis://127.0.0.1:1/0"  # nothing listens there

    async def body(hubs: list[Hub]) -> list[float]:
        return [await _allowed(hubs[0], "local", 3, 60) for _ in range(5)]

    with caplog.at_level(logging.WARNING, logger="qa_service.ratelimit"):
        results = _run(dead, tmp_path, body)
    assert results[:3] == [0.0] * 3 and all(59 < r <= 60 for r in results[3:]), results
    assert "this process counts alone" in caplog.text


def test_a_flood_of_new_keys_evicts_the_oldest_local_counts_not_all(tmp_path, monkeypatch) -> None:
    """The local log is bounded; a flood of made-up keys (say, usernames) must not
    wipe the count of an account under attack, which keeps being hit."""
    monkeypatch.setattr(ratelimit, "MAX_LOCAL_KEYS", 4)
    dead = "redis://127.0.0.1:1/0"  # nothing listens there: the local log decides

    async def body(hubs: list[Hub]) -> tuple[list[float], list[float], list[str]]:
        hub = hubs[0]
        first = [await _allowed(hub, "login:anna", 3, 60) for _ in range(3)]
        during = []
        for i in range(10):
            await _allowed(hub, f"login:made-up-{i}", 3, 60)
            during.append(await _allowed(hub, "login:anna", 3, 60))
        return first, during, list(hub.limiter._local)

    first, during, kept = _run(dead, tmp_path, body)
    assert first == [0.0] * 3
    assert all(59 < r <= 60 for r in during), during  # still limited, all along
    assert len(kept) == 4 and "login:anna" in kept
    assert kept[:3] == [f"login:made-up-{i}" for i in (7, 8, 9)]  # the oldest went first


# ── question.ask, end to end, on two app instances sharing a Redis ─────────
def _ask(c: Any, speaker_id: int) -> dict[str, Any]:
    payload = {"client_id": uuid.uuid4().hex, "speaker_id": speaker_id, "text": "Is the plant open?", "language": "en"}
    return c.request("question.ask", payload)


@pytest.fixture
def two_servers(settings, event_id) -> Any:
    servers = [start_server(settings), start_server(settings)]
    yield servers
    for srv in servers:
        srv.stop()


def test_a_viewer_limit_is_shared_by_two_hubs_and_says_when_to_retry(two_servers, settings, sample) -> None:
    a, b = two_servers
    speaker = sample["speakers"]["moscow"][1].id
    limit = settings.questions_per_minute
    with ws_client(f"{a.ws_base}/ws/viewer") as first:
        token = first.request("hello")["payload"]["viewer_token"]
        replies = [_ask(first, speaker) for _ in range(limit - 2)]
    with ws_client(f"{b.ws_base}/ws/viewer") as second:
        assert second.request("hello", {"viewer_token": token})["ok"]
        replies += [_ask(second, speaker) for _ in range(3)]
    assert [r["ok"] for r in replies] == [True] * limit + [False]
    error = replies[-1]["error"]
    assert error["code"] == "rate.limited"
    assert 50 < error["details"]["retry_after"] <= 60  # the first question leaves the minute then


def test_an_address_is_limited_across_viewers(settings_factory, event_id, sample) -> None:
    srv = start_server(settings_factory(questions_per_minute=1))  # so 4 questions a minute per address
    speaker = sample["speakers"]["moscow"][1].id
    try:
        codes = []
        for _ in range(5):  # five fresh viewers, one address
            with ws_client(f"{srv.ws_base}/ws/viewer") as c:
                assert c.request("hello")["ok"]
                reply = _ask(c, speaker)
                codes.append(None if reply["ok"] else reply["error"]["code"])
                if not reply["ok"]:
                    assert reply["error"]["details"]["retry_after"] > 0
        assert codes == [None] * 4 + ["rate.limited"]
    finally:
        srv.stop()


def test_retry_after_header_on_rest(settings_factory, event_id) -> None:
    """Logins beyond the address limit: 429 and Retry-After (a limit's REST face)."""
    import httpx

    srv = start_server(settings_factory(login_attempts_per_address=2))
    try:
        with httpx.Client(base_url=srv.base, timeout=10 * SECOND) as client:
            codes = [
                client.post("/api/login", json={"username": f"nobody{i}", "password": "wrong-password"})
                for i in range(3)
            ]
        assert [r.status_code for r in codes] == [401, 401, 429]
        assert 55 <= int(codes[-1].headers["retry-after"]) <= 60
        assert codes[-1].json()["error"]["code"] == "rate.limited"
    finally:
        srv.stop()


def test_a_hit_refused_by_one_key_is_recorded_on_none(redis_url, tmp_path) -> None:
    """A viewer over its own limit must not use up its address's (shared by a whole
    venue behind one NAT): several keys are hit all or nothing."""

    async def body(hubs: list[Hub]) -> None:
        limiter = hubs[0].limiter
        assert await limiter.hit_all([("viewer-a", 1), ("room", 3)], 60) == 0.0
        for _ in range(5):  # viewer-a is over its limit: refused, and the room's count stays at 1
            assert await limiter.hit_all([("viewer-a", 1), ("room", 3)], 60) > 0
        assert await limiter.hit_all([("viewer-b", 1), ("room", 3)], 60) == 0.0
        assert await limiter.hit_all([("viewer-c", 1), ("room", 3)], 60) == 0.0
        assert await limiter.hit_all([("viewer-d", 1), ("room", 3)], 60) > 0  # the room's third hit was c's

    _run(redis_url, tmp_path, body)
