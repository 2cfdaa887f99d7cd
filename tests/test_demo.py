"""`qa-service demo`, the README's first command, as a new user runs it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .support import SECOND, free_port, wait_until

pytestmark = pytest.mark.integration


def test_demo_starts_everything_prints_urls_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env |= {"QA_DATA_DIR": str(tmp_path / "data"), "QA_PORT": str(port)}
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "qa_service.cli", "demo"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until(
            lambda: "API schema" in log.read_text(errors="replace") or proc.poll() is not None, 120 * SECOND, "the URLs"
        )
        text = log.read_text()
        assert proc.poll() is None, text
        assert f"viewer page     http://127.0.0.1:{port}/" in text
        password = re.search(r"login: demo / (\S+)\)", text)
        assert password and len(password.group(1)) >= 12 and "TEST MODELS ONLY" in text
        # Generated for this data directory (never a public default) and good for logging in.
        assert (tmp_path / "data" / "demo_password").read_text().strip() == password.group(1)
        assert (tmp_path / "data" / "demo_password").stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "data" / "qa.sqlite3").stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
        hosts = re.findall(r"host \S+\s+(http://\S+)", text)
        assert len(hosts) == 9
        wait_until(lambda: _get(f"http://127.0.0.1:{port}/healthz") == 200, 60 * SECOND, "the hub")
        assert _get(f"http://127.0.0.1:{port}/") == 200
        login = httpx.post(
            f"http://127.0.0.1:{port}/api/login", json={"username": "demo", "password": password.group(1)}
        )
        assert login.status_code == 200, login.text
        assert login.json()["role"] == "admin"  # the demo opens /admin and /staff too
        assert f"http://127.0.0.1:{port}/admin" in text and f"http://127.0.0.1:{port}/report" in text
        assert _get(hosts[0]) == 200
        schedule = httpx.get(f"http://127.0.0.1:{port}/api/schedule").json()
        assert "live" in {s["status"] for s in schedule["segments"]}
        wait_until(lambda: "Listening on" in log.read_text(errors="replace"), 120 * SECOND, "the worker")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    socket_file = tmp_path / "data" / "redis" / "redis.sock"
    assert not socket_file.exists()  # the embedded Redis stopped with the demo
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
    assert leftovers == []


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0
