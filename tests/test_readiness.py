"""/healthz is liveness; /readyz names what a balancer needs to know."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration


def test_readyz_reports_each_dependency_and_the_workers(server, settings, redis_url) -> None:
    r = httpx.get(server.base + "/readyz", timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"database": "ok", "redis": "ok", "bus": "ok", "tasks": "ok"}
    assert body["translation_workers"] == "none heard"  # informational: a hub serves without workers

    import redis

    from workers.heartbeat import beat

    client = redis.Redis.from_url(redis_url)
    beat(client, settings.redis_prefix, "testhost:worker-x")  # what a worker's heartbeat thread does
    client.close()
    assert httpx.get(server.base + "/readyz", timeout=10).json()["translation_workers"].startswith("last heartbeat")


def test_healthz_needs_nothing_but_the_process(server) -> None:
    assert httpx.get(server.base + "/healthz", timeout=10).json()["status"] == "ok"
