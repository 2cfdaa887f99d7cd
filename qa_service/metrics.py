"""Prometheus metrics of one hub process, and who may read them.

Two kinds:

- **Counted as things happen**: the hub calls :class:`HubMetrics`'s methods
  (``hub.metrics.hello("viewer")``): sockets open, hellos, resyncs, slow clients
  cut, events published and delivered, how long a question took to be
  acknowledged, the bus's round trip.
- **Read when scraped** (:class:`_StateCollector`): questions by status, the
  translation queue, the database pools, the bus, stale channels, background task
  failures. The database count runs in a thread and Redis is asked with a bound;
  a source that does not answer is left out of that scrape and counted in
  ``qa_scrape_errors_total{source}``: a scrape never fails because the database
  or Redis is away.

Every hub has a registry of its own, not prometheus_client's global one: several
apps in one process (the tests; two hubs in one test) each count their own, and no
metric is ever registered twice. Workers export theirs (workers/metrics.py).

``GET /metrics`` is answered by :class:`MetricsEndpoint`, in front of the router:
it judges the TCP peer before ``edge.ClientAddress`` rewrites it (see
:func:`refusal`), and it is no REST operation (no session, not in the OpenAPI
document).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from sqlmodel import col, select
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .db.models import Question
from .domain.errors import DomainError, Forbidden
from .domain.lifecycle import Status
from .edge import is_trusted_peer, real_client
from .services.context import OUTAGE_ERRORS
from .services.questions import event_by_slug
from .settings import Settings

if TYPE_CHECKING:
    from .hub.hub import Hub

log = logging.getLogger(__name__)

PATH = "/metrics"
ROLES = ("viewer", "moderator", "host")
STATUSES = frozenset(s.value for s in Status)
SOURCES = ("database", "redis")  # what a scrape reads besides the process itself
SOURCE_TIMEOUT = 2.0  # seconds a scrape waits for each source, then answers without it
# question.ask → its reply: 1 ms (a warm SQLite insert) … 10 s (a database near its timeout)
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
# Headers a proxy writes the client's address into: a request carrying one came through a proxy.
FORWARDING_HEADERS = frozenset({b"x-forwarded-for", b"forwarded", b"x-real-ip"})


class HubMetrics:
    """The metrics of one hub. Each method is a few lock-protected additions:
    cheap enough for every message, and safe from any thread."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.registry = CollectorRegistry()
        r = self.registry
        self._sockets = Gauge("qa_sockets", "Open websockets by role", ["role"], registry=r)
        self._hellos = Counter("qa_hellos", "Sockets that said hello, by role", ["role"], registry=r)
        self._resyncs = Counter("qa_resyncs", "Resyncs sent to sockets, by reason", ["reason"], registry=r)
        self._cuts = Counter("qa_slow_consumer_cuts", "Sockets closed because their queue was full", registry=r)
        self._published = Counter("qa_events_published", "Events this hub published on the bus", registry=r)
        self._delivered = Counter("qa_events_delivered", "Events queued to this hub's sockets", registry=r)
        self._ack = Histogram(
            "qa_ask_ack_seconds",
            "From question.ask past its rate limit to its question committed (the reply goes out next)",
            buckets=ACK_BUCKETS,
            registry=r,
        )
        self._bus_lag = Gauge("qa_bus_lag_seconds", "Round trip of the bus heartbeat, last measured", registry=r)
        self._scrape_errors = Counter(
            "qa_scrape_errors", "Scrapes that left a source out (it did not answer)", ["source"], registry=r
        )
        for role in ROLES:  # every series exists from the start (rate() and alerts need a zero)
            self._sockets.labels(role)
            self._hellos.labels(role)
        for source in SOURCES:
            self._scrape_errors.labels(source)
        self._state = _StateCollector(hub)
        r.register(self._state)
        ProcessCollector(registry=r)  # open files, memory, CPU of this process
        PlatformCollector(registry=r)
        self._lock = asyncio.Lock()
        self._db_task: asyncio.Future[dict[str, int]] | None = None
        self._failing: set[str] = set()

    # ── called by the hub ──────────────────────────────────────────────────
    def socket_opened(self, role: str) -> None:
        self._sockets.labels(role).inc()

    def socket_closed(self, role: str) -> None:
        self._sockets.labels(role).dec()

    def hello(self, role: str) -> None:
        self._hellos.labels(role).inc()

    def resync(self, reason: str) -> None:
        self._resyncs.labels(reason).inc()

    def slow_consumer_cut(self) -> None:
        self._cuts.inc()

    def published(self, n: int = 1) -> None:
        self._published.inc(n)

    def delivered(self, n: int = 1) -> None:
        self._delivered.inc(n)

    def ask_acked(self, seconds: float) -> None:
        self._ack.observe(seconds)

    def bus_lag(self, seconds: float) -> None:
        self._bus_lag.set(seconds)

    # ── scraping ───────────────────────────────────────────────────────────
    async def scrape(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition and its content type: Prometheus text, or OpenMetrics when
        ``accept`` (the scraper's Accept header) asks for it, as prometheus_client's
        own server does. Reads the database (in a thread) and Redis first, each
        bounded by SOURCE_TIMEOUT; one scrape at a time."""
        encode, content_type = choose_encoder(accept)
        async with self._lock:
            self._state.questions = await self._questions()
            self._state.queues = await self._queue_depths()
            return encode(self.registry), content_type

    async def _questions(self) -> dict[str, int] | None:
        # At most one count in flight: a database that hangs holds one thread, not one per scrape.
        if self._db_task is None or self._db_task.done():
            self._db_task = asyncio.ensure_future(self.hub.run(_questions_by_status, self.hub))
            # One that ends after its scrape gave up is looked at by nobody: retrieve its outcome.
            self._db_task.add_done_callback(lambda t: t.cancelled() or t.exception())
        task = self._db_task
        await asyncio.wait({task}, timeout=SOURCE_TIMEOUT)
        if not task.done():
            self._left_out("database", f"no answer within {SOURCE_TIMEOUT:g}s")
            return None
        exc = task.exception()
        if isinstance(exc, OUTAGE_ERRORS):
            self._left_out("database", repr(exc))
            return None
        return self._answered("database", task.result())  # any other exception is a bug: raised

    async def _queue_depths(self) -> dict[str, int] | None:
        from rq import Queue

        name = self.hub.settings.queue_name
        try:
            depth = await asyncio.wait_for(
                self.hub.redis.llen(Queue.redis_queue_namespace_prefix + name), SOURCE_TIMEOUT
            )
        except OUTAGE_ERRORS as exc:  # TimeoutError is an OSError
            self._left_out("redis", repr(exc))
            return None
        return self._answered("redis", {name: int(depth)})

    def _left_out(self, source: str, why: str) -> None:
        self._scrape_errors.labels(source).inc()
        if source not in self._failing:  # once per outage, not once per scrape
            self._failing.add(source)
            log.warning(
                "metrics: %s did not answer the scrape (%s); its metrics are left out until it does", source, why
            )

    def _answered(self, source: str, value: dict[str, int]) -> dict[str, int]:
        if source in self._failing:
            self._failing.discard(source)
            log.info("metrics: %s answers the scrape again", source)
        return value


def _questions_by_status(hub: Hub) -> dict[str, int]:
    """One GROUP BY on the question table, for the event this hub runs (in a thread)."""
    with hub.ctx.read() as db:
        event = event_by_slug(db, hub.settings.event)
        if event is None:
            return {}
        rows = db.exec(
            select(Question.status, sa.func.count()).where(Question.event_id == event.id).group_by(col(Question.status))
        )
        return {str(status): int(n) for status, n in rows}


class _StateCollector:
    """Families read from the hub at scrape time. ``questions`` and ``queues`` are
    filled by :meth:`HubMetrics.scrape` just before (None: that source is away)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.questions: dict[str, int] | None = None
        self.queues: dict[str, int] | None = None

    def describe(self) -> Iterator[Metric]:
        return self._families(describe=True)

    def collect(self) -> Iterator[Metric]:
        return self._families(describe=False)

    def _families(self, *, describe: bool) -> Iterator[Metric]:
        hub = self.hub
        questions = GaugeMetricFamily("qa_questions", "Questions of the current event by status", labels=["status"])
        queue = GaugeMetricFamily(
            "qa_translation_queue_depth", "Translation jobs waiting in the RQ queue", labels=["queue"]
        )
        pool = GaugeMetricFamily("qa_db_pool_checked_out", "Database connections in use, by engine", labels=["engine"])
        connected = GaugeMetricFamily("qa_bus_connected", "1 while the bus reader hears its heartbeat")
        age = GaugeMetricFamily("qa_bus_heartbeat_age_seconds", "Seconds since the bus reader heard anything")
        stale = GaugeMetricFamily("qa_stale_channels", "Channels whose missed events are not announced yet")
        failures = CounterMetricFamily("qa_task_failures", "Exceptions in supervised background tasks", labels=["task"])
        if describe:
            yield from (questions, queue, pool, connected, age, stale, failures)
            return
        if self.questions is not None:
            for status in Status:
                questions.add_metric([status.value], self.questions.get(status.value, 0))
            for other, n in self.questions.items():  # a status this code does not know (yet)
                if other not in STATUSES:
                    questions.add_metric([other], n)
            yield questions
        if self.queues is not None:
            for name, depth in self.queues.items():
                queue.add_metric([name], depth)
            yield queue
        for name, engine in _engines(hub):
            checked_out = getattr(engine.pool, "checkedout", None)
            if callable(checked_out):
                pool.add_metric([name], checked_out())
        yield pool
        connected.add_metric([], 1 if hub.bus.healthy else 0)
        age.add_metric([], hub.bus.heartbeat_age)
        stale.add_metric([], hub.ctx.publisher.stale_channels)
        yield from (connected, age, stale)
        counts = dict.fromkeys(hub.tasks_alive, 0) | hub.task_failures
        for task, n in sorted(counts.items()):
            failures.add_metric([task], n)
        yield failures


def _engines(hub: Hub) -> Iterable[tuple[str, sa.Engine]]:
    yield "write", hub.ctx.engine
    if hub.ctx.read_engine is not None and hub.ctx.read_engine is not hub.ctx.engine:
        yield "read", hub.ctx.read_engine


# ── who may read /metrics ───────────────────────────────────────────────────
def refusal(peer: str | None, headers: Sequence[tuple[bytes, bytes]], settings: Settings) -> str | None:
    """Why a scrape is refused, or None when it may read the metrics.

    Allowed: loopback and ``QA_METRICS_ALLOW``, asked directly. A request that
    came through a proxy (it carries a forwarding header) counts only through a
    proxy listed in ``QA_TRUSTED_PROXIES``, and then as the client that proxy
    names. Else a balancer on this machine, left out of QA_TRUSTED_PROXIES, would
    make every visitor look like loopback. Metrics are per process anyway:
    scrape each hub, not the balancer."""
    if peer is None:
        return "the client address is unknown"
    forwarded = any(name in FORWARDING_HEADERS for name, _ in headers)
    if forwarded and not is_trusted_peer(peer, settings.proxy_networks):
        return "this request came through a proxy that is not in QA_TRUSTED_PROXIES: scrape each hub directly"
    client = real_client(peer, list(headers), settings.proxy_networks, settings.proxy_header) if forwarded else peer
    if is_trusted_peer(client, LOOPBACK) or is_trusted_peer(client, settings.metrics_networks):
        return None
    return f"{client} may not read the metrics: add its network to QA_METRICS_ALLOW"


class MetricsEndpoint:
    """``GET /metrics``: Prometheus text exposition, for loopback and QA_METRICS_ALLOW
    (403 ``metrics.forbidden`` otherwise, in the app's one error body). Every other
    request passes through untouched."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        from .api.common import error_response  # imports the hub, which imports this module: not at the top

        response: Response
        client = scope.get("client")
        why = refusal(client[0] if client else None, scope["headers"], self.settings)
        if why is not None:
            log.warning("metrics: refused a scrape: %s", why)
            response = error_response(Forbidden("metrics.forbidden", why))
        elif scope["method"] not in ("GET", "HEAD"):
            response = error_response(_MethodNotAllowed("request.method_not_allowed", "use GET"))
            response.headers["Allow"] = "GET, HEAD"
        else:
            metrics: HubMetrics = scope["app"].state.metrics
            accept = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"accept"), "")
            body, content_type = await metrics.scrape(accept)
            response = Response(body, headers={"Content-Type": content_type})
        await response(scope, receive, send)


class _MethodNotAllowed(DomainError):
    status = 405
