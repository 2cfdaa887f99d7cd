"""create_app(settings): routes, middleware, lifespan. Touches nothing at import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis
import redis.asyncio as aioredis
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Scope

from workers.heartbeat import heartbeat_age  # imports no translation engine

from . import __version__, pages
from .api import admin_event, auth, moderation, staff
from .api import export as export_api
from .api import report as report_api
from .api.common import error_response
from .api.openapi import document
from .bus.redis_bus import SyncPublisher
from .db.engine import make_engine, make_read_engine, ping_database, upgrade
from .domain.errors import DomainError
from .edge import BodyLimit, Bypass, ClientAddress, ConnectionCap, viewer_socket, websocket
from .embedded_redis import EmbeddedRedis
from .hub import endpoints
from .hub.hub import Hub
from .keys import secure_data_dir, signing_key
from .logs import RequestId
from .metrics import MetricsEndpoint
from .pages import SecurityHeaders
from .server import install_log_redaction
from .services.context import OUTAGE_ERRORS, Context
from .settings import Settings

log = logging.getLogger(__name__)


async def openapi(request: Request) -> Response:
    """The REST API, described by hand (qa_service/api/openapi.py; a test keeps it in step with the routes)."""
    return JSONResponse(document())


async def health(request: Request) -> JSONResponse:
    """Liveness: the process answers. Dependencies are /readyz's business."""
    return JSONResponse({"status": "ok", "version": __version__})


async def ready(request: Request) -> JSONResponse:
    """Readiness, for load balancers and orchestrators: the database answers within
    its timeout, Redis answers, the bus reader hears its heartbeat, background
    tasks run. 503 with the failing checks otherwise."""
    hub: Hub = request.app.state.hub
    timeout = hub.settings.db_timeout_seconds
    checks: dict[str, object] = {}
    try:
        await asyncio.wait_for(hub.run(ping_database, hub.ctx.engine), timeout)
        checks["database"] = "ok"
    except OUTAGE_ERRORS as exc:  # TimeoutError is an OSError
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        await asyncio.wait_for(hub.redis.ping(), hub.settings.redis_timeout_seconds)
        checks["redis"] = "ok"
    except OUTAGE_ERRORS as exc:  # TimeoutError is an OSError
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    checks["bus"] = "ok" if hub.bus.healthy else f"no heartbeat for {hub.bus.heartbeat_age:.1f}s"
    try:  # informational: a hub serves without workers (questions wait, untranslated)
        age = await asyncio.wait_for(hub.run(heartbeat_age, hub.settings, hub.ctx.publisher.client), timeout)
        workers = "none heard" if age is None else f"last heartbeat {age:.1f}s ago"
    except OUTAGE_ERRORS:
        workers = "unknown (Redis unreachable)"
    dead = [name for name, alive in hub.tasks_alive.items() if not alive]
    checks["tasks"] = "ok" if not dead else f"stopped: {', '.join(dead)}"
    ok = all(v == "ok" for v in checks.values())
    body = {
        "status": "ready" if ok else "not ready",
        "checks": checks,
        "translation_workers": workers,
        "sockets": len(hub.connections),
    }
    return JSONResponse(body, 200 if ok else 503)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    """404 / 405 from the router, in the one error body."""
    assert isinstance(exc, HTTPException)
    code = {404: "request.not_found", 405: "request.method_not_allowed"}.get(exc.status_code, "request.invalid")
    body = {"error": {"code": code, "message": exc.detail, "details": {}}}
    return JSONResponse(body, exc.status_code, headers=exc.headers)


async def _outage(request: Request, exc: Exception) -> Response:
    route = request.scope.get("route")  # the template (/host/{token}), never the token itself
    log.warning("%s %s failed: a dependency is away (%r)", request.method, getattr(route, "path", "?"), exc)
    body = {
        "error": {
            "code": "service.unavailable",
            "message": "the service cannot do that right now (database or message bus unreachable); try again shortly",
            "details": {"retry_after": 2},
        }
    }
    return JSONResponse(body, 503, headers={"Retry-After": "2"})


def _translation_enqueuer(settings: Settings, client: redis.Redis, publisher: SyncPublisher):  # type: ignore[no-untyped-def]
    """After a question is committed, queue its translation. If Redis refuses (or
    failed a moment ago: no waiting on a dead server), the question is safe in the
    database and the next worker sweep picks it up."""
    from rq import Queue

    from workers.jobs import enqueue_many

    queue = Queue(settings.queue_name, connection=client)

    def hook(question_ids: list[int]) -> None:
        if publisher.recently_failed:
            log.warning("Redis failed a moment ago: question(s) %s wait for a worker sweep", question_ids)
            return
        try:
            enqueue_many(queue, question_ids, timeout=settings.translate_job_timeout)
        except (redis.RedisError, OSError) as exc:
            log.warning("could not queue translation of question(s) %s (%s); a worker sweep will", question_ids, exc)

    return hook


def _feed_enqueuers(settings: Settings, client: redis.Redis, publisher: SyncPublisher):  # type: ignore[no-untyped-def]
    """The feed's translation into its viewers' languages (workers/feed.py): after a
    question entered the feed, and when a language gets its first reader on this hub
    (at most once a minute per language across hubs). Best effort: if Redis refuses,
    those viewers read the original until the next trigger."""
    from rq import Queue

    from workers import feed as feed_jobs

    queue = Queue(settings.audience_queue_name, connection=client)

    def entered(event_id: int, question_ids: list[int]) -> None:
        if publisher.recently_failed:
            return
        try:
            feed_jobs.enqueue(queue, event_id, question_ids=question_ids)
        except (redis.RedisError, OSError) as exc:
            log.warning("could not queue the feed translation of question(s) %s (%s)", question_ids, exc)

    def new_language(event_id: int, language: str) -> None:
        if client.set(f"{settings.redis_prefix}:feed:queued:{event_id}:{language}", 1, nx=True, ex=60):
            feed_jobs.enqueue(queue, event_id, languages=[language])

    return entered, new_language


class IdConvertor(Convertor[str]):
    """Path ids: a run of ASCII digits, handed over as text. Starlette's ``int``
    convertor calls int() while matching (4,300+ digits raise: a 500); here the
    handler's ``path_int`` range-checks it (400 request.invalid)."""

    regex = "[0-9]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("id", IdConvertor())


async def _until_returned(*engines: sa.Engine, limit: float = 5.0) -> None:
    """Wait (bounded) until no database connection is checked out: dispose() does not
    close a connection in use, and one returned to a disposed pool is never closed."""
    deadline = asyncio.get_running_loop().time() + limit
    while any(getattr(e.pool, "checkedout", lambda: 0)() for e in engines):
        if asyncio.get_running_loop().time() > deadline:
            log.warning("database connections still in use at shutdown")
            return
        await asyncio.sleep(0.02)


def _bypass(layer: Any, skip: Callable[[Scope], bool], **kwargs: Any) -> Middleware:
    """Middleware ``layer``, skipped for the scopes ``skip`` names (edge.Bypass)."""
    return Middleware(Bypass, layer=layer, skip=skip, **kwargs)  # type: ignore[arg-type]  # Bypass takes **kwargs


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        install_log_redaction()
        secure_data_dir(settings)
        embedded = None
        redis_url = settings.redis_url
        if redis_url is None:
            embedded = EmbeddedRedis(settings.data_dir / "redis")
            redis_url = embedded.start()
            log.info("started embedded redis at %s", redis_url)
        db_url = settings.effective_database_url
        if settings.auto_migrate:
            upgrade(db_url)
        engine = make_engine(db_url, timeout=settings.db_timeout_seconds)
        read_engine = make_read_engine(db_url, engine, timeout=settings.db_timeout_seconds)
        rto = settings.redis_timeout_seconds
        sync_redis = redis.Redis.from_url(redis_url, socket_connect_timeout=rto, socket_timeout=rto)
        ctx = Context(
            settings,
            engine,
            SyncPublisher(sync_redis, settings.redis_prefix, settings.history_size),
            read_engine=read_engine,
        )
        ctx.on_questions_created.append(_translation_enqueuer(settings, sync_redis, ctx.publisher))
        feed_entered, feed_language = _feed_enqueuers(settings, sync_redis, ctx.publisher)
        ctx.on_feed_entered.append(feed_entered)
        # A blocking pool: in a reconnect storm requests wait for a free connection
        # (up to the timeout) instead of failing with MaxConnectionsError.
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url,
            max_connections=settings.redis_max_connections,
            timeout=rto,
            socket_connect_timeout=rto,
            socket_timeout=rto,
        )
        aredis = aioredis.Redis(connection_pool=pool)
        hub = Hub(settings, ctx, aredis)
        hub.on_feed_language = feed_language
        ctx.publisher.on_published = hub.metrics.published
        await hub.start()
        app.state.hub = hub
        # GET /metrics reads this (metrics.MetricsEndpoint); the hub counts into it.
        app.state.metrics = hub.metrics
        app.state.redis_url = redis_url
        try:
            yield
        finally:
            await hub.stop()
            await aredis.aclose()
            await pool.aclose()
            sync_redis.close()
            await _until_returned(engine, read_engine)
            engine.dispose()
            read_engine.dispose()
            if embedded:
                embedded.stop()

    routes = [
        Route("/healthz", health, include_in_schema=False),
        Route("/readyz", ready, include_in_schema=False),
        Route("/openapi.json", openapi, include_in_schema=False),
        Route("/api/login", auth.login, methods=["POST"]),
        Route("/api/logout", auth.logout, methods=["POST"]),
        Route("/api/me", auth.me, methods=["GET"]),
        Route("/api/schedule", moderation.public_schedule, methods=["GET"]),
        Route("/api/moderation/snapshot", moderation.snapshot, methods=["GET"]),
        Route("/api/moderation/audit", moderation.audit_log, methods=["GET"]),
        Route("/api/export", export_api.download, methods=["GET"]),
        Route("/api/questions/{question_id:id}/translations/{language}", moderation.edit_translation, methods=["PUT"]),
        Route("/api/questions/{question_id:id}/star", moderation.star, methods=["POST"]),
        Route("/api/questions/{question_id:id}/feed", moderation.feed_visibility, methods=["POST"]),
        Route("/api/questions/{question_id:id}/undo", moderation.undo, methods=["POST"]),
        Route("/api/questions/{question_id:id}/ban", moderation.ban, methods=["POST"]),
        Route("/api/questions/{question_id:id}/unban", moderation.unban, methods=["POST"]),
        Route("/api/questions/{question_id:id}/retranslate", moderation.retranslate, methods=["POST"]),
        Route("/api/questions/{question_id:id}/{action}", moderation.question_action, methods=["POST"]),
        Route("/api/studios/{studio_id:id}/queue", moderation.reorder_queue, methods=["POST"]),
        Route("/api/segments/{segment_id:id}/status", moderation.segment_status, methods=["POST"]),
        Route("/api/host/{token}/queue", moderation.host_queue, methods=["GET"]),
        Route("/api/admin/event", admin_event.event, methods=["GET"]),
        Route("/api/admin/studios", admin_event.create_studio, methods=["POST"]),
        Route("/api/admin/studios/{studio_id:id}", admin_event.studio_item, methods=["PUT", "DELETE"]),
        Route("/api/admin/segments", admin_event.create_segment, methods=["POST"]),
        Route("/api/admin/segments/{segment_id:id}", admin_event.segment_item, methods=["PUT", "DELETE"]),
        Route("/api/admin/speakers", admin_event.create_speaker, methods=["POST"]),
        Route("/api/admin/speakers/{speaker_id:id}", admin_event.speaker_item, methods=["PUT", "DELETE"]),
        Route("/api/staff/accounts", staff.accounts, methods=["GET", "POST"]),
        Route("/api/staff/accounts/{user_id:id}/password", staff.reset_password, methods=["POST"]),
        Route("/api/staff/accounts/{user_id:id}/disabled", staff.set_disabled, methods=["POST"]),
        Route("/api/staff/host-links", staff.host_links, methods=["GET", "POST"]),
        Route("/api/staff/host-links/{link_id:id}/revoke", staff.revoke_host_link, methods=["POST"]),
        Route("/api/report", report_api.report, methods=["GET"]),
        WebSocketRoute("/ws/viewer", endpoints.viewer_socket),
        WebSocketRoute("/ws/moderator", endpoints.moderator_socket),
        WebSocketRoute("/ws/host", endpoints.host_socket),
    ]
    routes += pages.routes()
    # Websockets skip the layers that only matter to HTTP (Bypass: no frame of them
    # stays alive per idle socket); the viewer socket also skips the session cookie.
    middleware = [  # outermost first
        _bypass(RequestId, websocket),  # X-Request-ID, and the request_id of every log line
        # GET /metrics: judges the TCP peer, before ClientAddress
        _bypass(MetricsEndpoint, websocket, settings=settings),
        Middleware(ClientAddress, trusted=settings.proxy_networks, header=settings.proxy_header),
        Middleware(ConnectionCap, limit=settings.max_connections_per_address),
        _bypass(BodyLimit, websocket, limit=settings.max_body_bytes),
        _bypass(SecurityHeaders, websocket, settings=settings),
        _bypass(
            SessionMiddleware,
            viewer_socket,
            secret_key=signing_key(settings),
            session_cookie="qa_session",
            max_age=settings.session_max_age,
            same_site="lax",
            https_only=settings.secure_cookies,
        ),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            HTTPException: _http_error,
            DomainError: _domain_error,
            **dict.fromkeys(OUTAGE_ERRORS, _outage),
        },
    )
    app.state.settings = settings
    return app
