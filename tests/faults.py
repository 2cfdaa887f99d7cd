"""Fault injection with processes of the test's own: a Redis server that can be
killed and restarted (with or without an append-only file), a TCP proxy that
cuts a database off, hubs and workers as real `qa-service` subprocesses.
Never the shared services of the machine."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from qa_service.embedded_redis import server_binary
from qa_service.settings import Settings

from .support import SECOND, free_port, wait_until


class RedisServer:
    """A redis-server on a TCP port of its own; kill -9 and restart at will."""

    def __init__(self, directory: Path, *, appendonly: bool = False, port: int | None = None) -> None:
        self.directory = directory
        self.appendonly = appendonly
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "always",
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def up() -> bool:
            try:
                return bool(client.ping())
            except (redis.RedisError, OSError):
                return False

        wait_until(up, 10 * SECOND, f"redis on {self.port}")
        client.close()
        return self

    def kill(self) -> None:
        """kill -9: no shutdown, no final save."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def restart(self, after: float = 0.0) -> None:
        self.kill()
        time.sleep(after)
        self.start()

    def stop(self) -> None:
        self.kill()


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; ``cut()`` drops every connection and
    refuses new ones (a database gone away), ``restore()`` lets them through again;
    ``freeze()`` keeps every connection open but carries nothing (a half-open link,
    a black-holed route) until ``thaw()``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._open = True
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> TcpProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open:
            writer.close()
            return
        await self._flowing.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    await self._flowing.wait()
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def cut(self) -> None:
        def do() -> None:
            self._open = False
            for w in list(self._writers):
                w.transport.abort()
            self._writers.clear()

        self._loop.call_soon_threadsafe(do)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(lambda: setattr(self, "_open", True))

    def freeze(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def thaw(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.set)

    def stop(self) -> None:
        self.thaw()
        self.cut()

        async def shutdown() -> None:
            if self._server:
                self._server.close()
            await asyncio.sleep(0.1)
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `qa-service` subprocess sharing the test's settings."""
    env = dict(os.environ) | {
        "QA_DATABASE_URL": settings.effective_database_url,
        "QA_REDIS_URL": settings.redis_url or "",
        "QA_REDIS_PREFIX": settings.redis_prefix,
        "QA_SECRET_KEY": settings.secret_key,
        "QA_DATA_DIR": str(settings.data_dir),
        "QA_AUTO_MIGRATE": "false",
    }
    if settings.argos_dir:
        env["QA_ARGOS_DIR"] = str(settings.argos_dir)
    return env | extra


class ServiceProcess:
    """`qa-service serve` or `qa-service worker` as a subprocess, output in a log file."""

    def __init__(self, settings: Settings, *args: str, **env: str) -> None:
        self.settings = settings
        self.args = args
        self.env = env
        self.port = int(env["QA_PORT"]) if "QA_PORT" in env else None
        self.log = settings.data_dir / f"{args[0]}-{os.getpid()}-{id(self)}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "qa_service.cli", *self.args],
                env=service_env(self.settings, **self.env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, path: str = "/healthz", timeout: float = 30 * SECOND) -> ServiceProcess:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.args[0]} exited {self.proc.returncode}:\n{self.output()[-3000:]}")
            try:
                return httpx.get(self.base + path, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout, f"{self.args[0]} on {self.port}")
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def hub(settings: Settings, **env: str) -> ServiceProcess:
    return ServiceProcess(settings, "serve", QA_PORT=str(free_port()), **env)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def postgres_target(url: str) -> tuple[str, int]:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return u.host or "127.0.0.1", u.port or 5432


def through_proxy(url: str, proxy: TcpProxy) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def redis_of(server: RedisServer, **kwargs: Any) -> redis.Redis:
    return redis.Redis.from_url(server.url, socket_connect_timeout=1, socket_timeout=2, **kwargs)
