"""The three websocket endpoints: /ws/viewer, /ws/moderator, /ws/host."""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from starlette.websockets import WebSocket

from .. import keys
from ..bus import channels
from ..db.models import Studio
from ..domain.errors import DomainError
from ..domain.validation import check_id, language_code
from ..edge import client_key
from ..logs import reset_socket_id, set_socket_id
from ..ratelimit import RateLimited
from ..services import accounts, feed, questions, snapshots, staff
from ..services.context import OUTAGE_ERRORS
from . import protocol
from .connection import Connection, SnapshotUnavailable
from .hub import Hub

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
# hello gets the request id and sends its own reply (before the snapshot or replay).
HelloHandler = Callable[[str | None, dict[str, Any]], Awaitable[None]]
_socket_ids = itertools.count(1)  # per process: log lines of one socket share its id
RETRY_AFTER = 2  # seconds a client is told to wait when the database or Redis is away


def unavailable(request_id: str | None) -> dict[str, Any]:
    return protocol.error(
        request_id,
        "service.unavailable",
        "the service cannot do that right now (database or message bus unreachable); try again shortly",
        {"retry_after": RETRY_AFTER},
    )


def _hub(ws: WebSocket) -> Hub:
    return ws.app.state.hub  # type: ignore[no-any-return]


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _normal_origin(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, the default port filled in; None if malformed."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.path or parts.query or parts.username is not None:
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def origin_allowed(origin: str | None, allowed: Iterable[str]) -> bool:
    """Cookie-authenticated sockets must come from our own pages (no cross-site
    websocket hijacking): the Origin, scheme included, is one of QA_PUBLIC_URL's
    (settings.allowed_origins). The Host header is never trusted; no Origin, no socket."""
    if origin is None:
        return False
    mine = _normal_origin(origin)
    return mine is not None and any(mine == _normal_origin(a) for a in allowed)


MAX_WAITING = 8  # requests of one socket waiting behind the one being handled


async def _serve(
    ws: WebSocket, conn: Connection, on_hello: HelloHandler, handlers: dict[str, Handler], hello_by: float
) -> None:
    """Receive loop shared by every role: hello first (by the loop time ``hello_by``,
    one deadline that no other frame extends), then requests.

    A socket's requests are handled one at a time, in order, by a task of their own, so
    the loop keeps reading meanwhile: a ``ping`` is answered at once even while an ask
    waits on a stalled database (a client that heard nothing for seconds would drop the
    socket and dial again). Replies are matched by id, so a pong may overtake them."""
    hub = _hub(ws)
    loop = asyncio.get_running_loop()
    greeted = False
    waiting: collections.deque[protocol.Request] = collections.deque()
    worker: asyncio.Task[None] | None = None

    async def work() -> None:
        while waiting:
            req = waiting.popleft()
            await _answer(conn, req.id, handlers[req.type](req.payload))

    while not conn.closing:
        if greeted:
            message = await ws.receive()  # no wait_for: it would hold a frame per idle socket
        else:
            try:
                message = await asyncio.wait_for(ws.receive(), max(0.0, hello_by - loop.time()))
            except TimeoutError:
                conn.close(protocol.CLOSE_HELLO_TIMEOUT, "send hello first")
                return
        if message["type"] == "websocket.disconnect":
            return
        allowed = conn.allow_message()
        request_id = None
        try:
            req = protocol.parse(message, hub.settings.max_frame_bytes)
            request_id = req.id
            if not allowed:
                raise DomainError("rate.limited", "too many messages; slow down")
            if not greeted and req.type != "hello":
                raise DomainError("session.hello_required", "send hello before anything else")
            if req.type == "ping":
                conn.send(protocol.ok(req.id, {"pong": True}))
                continue
            if req.type == "hello":
                if greeted:
                    raise DomainError("session.already_started", "hello was already sent on this socket")
                try:
                    await on_hello(req.id, req.payload)
                except OUTAGE_ERRORS as exc:  # e.g. a replay while Redis loads: no state to start from
                    raise SnapshotUnavailable(repr(exc)) from exc
                greeted = True
                hub.metrics.hello(conn.role)
                continue
            if req.type not in handlers:
                raise protocol.ProtocolError(
                    "message.unknown_type", f"unknown message type {req.type!r}", req.id, known=sorted(handlers)
                )
            if len(waiting) >= MAX_WAITING:
                raise DomainError("rate.limited", "too many requests waiting on this socket; slow down")
            waiting.append(req)
            if worker is None or worker.done():
                worker = asyncio.create_task(work())
                _WORKERS.add(worker)  # kept until done: a request a socket left behind still completes
                worker.add_done_callback(_WORKERS.discard)
        except protocol.ProtocolError as exc:
            conn.send(protocol.error(exc.request_id or request_id, exc.code, exc.message, exc.details))
        except DomainError as exc:
            conn.send(protocol.error(request_id, exc.code, exc.message, exc.details))
        except SnapshotUnavailable as exc:  # hello could not be answered with a state: reconnect later
            log.warning("hello without a snapshot (%s): closing with 1013", exc)
            conn.send(unavailable(request_id))
            conn.close(protocol.CLOSE_TRY_AGAIN, "try again shortly", flush=True)
            return
        except Exception:  # a bug must not kill the socket; it is logged in full
            log.exception("request %s failed", request_id)
            conn.send(protocol.error(request_id, "server.error", "the server could not do that now; try again"))


_WORKERS: set[asyncio.Task[None]] = set()


async def _answer(conn: Connection, request_id: str | None, call: Awaitable[Any]) -> None:
    """Run one request and send its reply (or the error a client can act on)."""
    try:
        conn.send(protocol.ok(request_id, await call))
    except protocol.ProtocolError as exc:
        conn.send(protocol.error(exc.request_id or request_id, exc.code, exc.message, exc.details))
    except DomainError as exc:
        conn.send(protocol.error(request_id, exc.code, exc.message, exc.details))
    except OUTAGE_ERRORS as exc:
        log.warning("request %s failed: a dependency is away (%r)", request_id, exc)
        conn.send(unavailable(request_id))
    except Exception:  # a bug must not kill the socket; it is logged in full
        log.exception("request %s failed", request_id)
        conn.send(protocol.error(request_id, "server.error", "the server could not do that now; try again"))


async def _refuse(ws: WebSocket, code: int, reason: str) -> None:
    """Accept, then close with a documented code: a browser only sees the code of a
    socket that was accepted (a refused handshake is just 1006, and it would retry for ever)."""
    await ws.accept()
    await ws.close(code, reason)


async def _run(
    ws: WebSocket,
    role: str,
    make: Callable[[Connection], tuple[HelloHandler, dict[str, Handler]]],
    still_allowed: Callable[[], bool] | None = None,
) -> None:
    hub = _hub(ws)
    log_token = set_socket_id(f"{role[0]}{next(_socket_ids):x}")  # log lines of this socket name it
    hub.metrics.socket_opened(role)
    try:
        hello_by = asyncio.get_running_loop().time() + hub.settings.hello_timeout_seconds  # we accepted just now
        try:
            event_id = await hub.event_id()
        except DomainError as exc:
            await ws.send_text(protocol.dumps(protocol.error(None, exc.code, exc.message)))
            await ws.close(1011)
            return
        except OUTAGE_ERRORS as exc:
            log.warning("socket refused: database away (%r)", exc)
            await ws.send_text(protocol.dumps(unavailable(None)))
            await ws.close(protocol.CLOSE_TRY_AGAIN, "try again shortly")
            return
        conn = Connection(
            ws,
            hub.bus,
            event_id,
            queue_size=hub.settings.socket_queue_size,
            messages_per_second=hub.settings.messages_per_second,
            role=role,
        )
        conn.still_allowed = still_allowed
        conn.on_slow_consumer = hub.metrics.slow_consumer_cut
        conn.on_resync = hub.metrics.resync
        hub.connections.add(conn)
        try:
            on_hello, handlers = make(conn)
            await _serve(ws, conn, on_hello, handlers, hello_by)
        finally:
            hub.connections.discard(conn)
            if not conn.closing:
                conn.close(1000, "bye")
            await conn.drain(1.0)
            await conn.stop()
    finally:
        hub.metrics.socket_closed(role)
        reset_socket_id(log_token)


def _resume(payload: dict[str, Any]) -> object:
    return payload.get("resume")


# ── viewer ──────────────────────────────────────────────────────────────────
FEED_LANGUAGE_CHANGES_PER_MINUTE = 10  # per viewer: each change brings a snapshot


def _feed_language(payload: dict[str, Any]) -> str | None:
    """The language a viewer reads the feed in (``language`` of hello or feed.language)."""
    raw = payload.get("language")
    if raw is None:
        return None
    try:
        return language_code(raw)
    except DomainError:
        raise DomainError("feed.language_invalid", "language must be a code such as 'en' or 'pt-BR'") from None


async def viewer_socket(ws: WebSocket) -> None:
    hub = _hub(ws)
    await ws.accept()
    client_ip = client_key(ws.client.host) if ws.client else "unknown"  # an IPv6 /64 counts as one
    # Stored with each question (never the address itself): "hide asker" bans it for a while.
    address = keys.address_hash(hub.signing_key, client_ip) if ws.client else None
    state: dict[str, str] = {}
    # The feed language this socket reads, and the one it is counted for in hub.feed_readers.
    reading: dict[str, str | None] = {"language": None, "counted": None}

    def make(conn: Connection) -> tuple[HelloHandler, dict[str, Handler]]:
        async def hello(rid: str | None, payload: dict[str, Any]) -> None:
            viewer_id = hub.signer.read_viewer_token(payload.get("viewer_token"))
            token = payload.get("viewer_token")
            language = await hub.feed_language(conn.event_id, _feed_language(payload))
            # A viewer whose token was minted just now has asked nothing yet: its first
            # snapshot needs no database (a connect storm of new viewers reads none).
            new = viewer_id is None
            if viewer_id is None:
                viewer_id, token = hub.signer.new_viewer()
            state["viewer_id"] = viewer_id
            reading["language"] = language

            async def snapshot_of(heads: dict[str, int]) -> dict[str, Any]:
                nonlocal new
                programme = await hub.schedule_text(conn.event_id, heads[channels.SCHEDULE])
                shared = {"schedule": programme, "feed": await hub.feed_text(conn.event_id, heads, reading["language"])}
                if new:
                    new = False
                    return shared | snapshots.viewer_own_empty(hub.settings)
                own = await hub.run(snapshots.viewer_own, hub.ctx, conn.event_id, viewer_id)
                return shared | own

            await conn.attach(
                channels.for_viewer(viewer_id, language),
                snapshot_of,
                _resume(payload),
                lambda mode: protocol.ok(
                    rid,
                    {
                        "protocol": protocol.PROTOCOL_VERSION,
                        "viewer_id": viewer_id,
                        "viewer_token": token,
                        "start": mode,
                    },
                ),
            )
            if not conn.closing:
                hub.reader_joined(conn.event_id, language)
                reading["counted"] = language

        async def ask(payload: dict[str, Any]) -> dict[str, Any]:
            viewer_id = state["viewer_id"]
            s = hub.settings
            try:  # RateLimited: the reply's error details carry retry_after (seconds)
                await hub.limit_all(
                    (f"ask:v:{viewer_id}", s.questions_per_minute), (f"ask:ip:{client_ip}", s.questions_per_minute * 4)
                )
            except RateLimited:
                # A question sent again (say, after a reconnect) is not a new one: its ack stands.
                existing = await hub.run(questions.find_existing, hub.ctx, viewer_id, payload.get("client_id"))
                if existing is None:
                    raise
                return {"question": existing, "duplicate": True}
            started = time.monotonic()
            result = await hub.asks.ask(conn.event_id, questions.AskRequest(viewer_id, payload, address))
            hub.metrics.ask_acked(time.monotonic() - started)
            return {"question": result.question, "duplicate": not result.created}

        async def vote(payload: dict[str, Any]) -> dict[str, Any]:
            viewer_id = state["viewer_id"]
            per_minute = hub.settings.votes_per_minute
            await hub.limit_all((f"vote:v:{viewer_id}", per_minute), (f"vote:ip:{client_ip}", per_minute * 4))
            result = await hub.votes.vote(conn.event_id, feed.VoteRequest(viewer_id, payload))
            hub.voted(conn.event_id, result["question_id"])
            return result

        async def feed_language(payload: dict[str, Any]) -> dict[str, Any]:
            """Read the feed in another language: the socket listens to that language's
            texts instead, and a snapshot (after a ``resync``) brings the feed in it."""
            requested = _feed_language(payload)
            if requested is None:
                raise DomainError("feed.language_invalid", "name a language, such as 'en'")
            language = await hub.feed_language(conn.event_id, requested)
            if language is None:
                raise DomainError(
                    "feed.language_unavailable", f"this event is not read in {requested!r}", language=requested
                )
            old = reading["language"]
            if language != old:
                await hub.limit(f"feed-language:{state['viewer_id']}", FEED_LANGUAGE_CHANGES_PER_MINUTE)
                reading["language"] = language
                await conn.retune(channels.feed_texts(old) if old else None, channels.feed_texts(language), "language")
                if not conn.closing:  # a request that outlived its socket counts no reader
                    hub.reader_left(reading["counted"])
                    hub.reader_joined(conn.event_id, language)
                    reading["counted"] = language
            return {"language": language}

        async def snapshot(payload: dict[str, Any]) -> dict[str, Any]:
            own = await hub.run(snapshots.viewer, hub.ctx, conn.event_id, state["viewer_id"])
            return own | {"feed": await hub.run(feed.snapshot, hub.ctx, conn.event_id, reading["language"])}

        return hello, {
            "question.ask": ask,
            "question.vote": vote,
            "feed.language": feed_language,
            "snapshot": snapshot,
        }

    try:
        await _run(ws, "viewer", make)
    finally:
        hub.reader_left(reading["counted"])
        reading["counted"] = None


# ── moderator ───────────────────────────────────────────────────────────────
MODERATOR_ROLES = ("moderator", "admin")


async def moderator_socket(ws: WebSocket) -> None:
    hub = _hub(ws)
    if not origin_allowed(ws.headers.get("origin"), hub.settings.allowed_origins):
        await _refuse(ws, protocol.CLOSE_FORBIDDEN, "cross-origin socket refused")
        return
    uid, sid = ws.session.get("uid"), ws.session.get("sid")
    user = await hub.run(accounts.session_user, hub.ctx, uid, sid)
    if user is None or user.role not in MODERATOR_ROLES:
        await _refuse(ws, protocol.CLOSE_UNAUTHORIZED, "log in as a moderator first")
        return
    await ws.accept()

    def still_allowed() -> bool:
        again = accounts.session_user(hub.ctx, uid, sid)
        return again is not None and again.role in MODERATOR_ROLES

    def make(conn: Connection) -> tuple[HelloHandler, dict[str, Handler]]:
        async def hello(rid: str | None, payload: dict[str, Any]) -> None:
            await conn.attach(
                channels.for_moderator(),
                lambda _heads: hub.run(snapshots.moderator, hub.ctx, conn.event_id),
                _resume(payload),
                lambda mode: protocol.ok(
                    rid,
                    {"protocol": protocol.PROTOCOL_VERSION, "user": user.username, "role": user.role, "start": mode},
                ),
            )

        async def snapshot(payload: dict[str, Any]) -> dict[str, Any]:
            return await hub.run(snapshots.moderator, hub.ctx, conn.event_id)

        return hello, {"snapshot": snapshot}

    await _run(ws, "moderator", make, still_allowed)


# ── host ────────────────────────────────────────────────────────────────────
def studio_from_token(hub: Hub, token: str | None) -> Studio | None:
    """The studio a host link opens, or None if forged, expired or revoked (the
    studio's links all, or this one link: services/staff.py)."""
    parsed = hub.signer.read_host_token(token or "")
    if parsed is None:
        return None
    with hub.ctx.read() as db:
        studio = db.get(Studio, parsed.studio_id)
        if studio is None or studio.host_token_version != parsed.version:
            return None
        if parsed.link_id is not None and not staff.link_open(db, parsed.link_id, parsed.studio_id):
            return None
    return studio


async def host_socket(ws: WebSocket) -> None:
    hub = _hub(ws)
    token = ws.query_params.get("token")
    studio = await hub.run(studio_from_token, hub, token)
    if studio is None or studio.id is None:
        await _refuse(ws, protocol.CLOSE_UNAUTHORIZED, "this host link is invalid or was revoked")
        return
    studio_id = studio.id

    def still_allowed() -> bool:
        return studio_from_token(hub, token) is not None

    actor = f"host:{studio.slug}"
    await ws.accept()

    def make(conn: Connection) -> tuple[HelloHandler, dict[str, Handler]]:
        async def hello(rid: str | None, payload: dict[str, Any]) -> None:
            await conn.attach(
                channels.for_host(studio_id),
                lambda _heads: hub.run(snapshots.host, hub.ctx, conn.event_id, studio_id),
                _resume(payload),
                lambda mode: protocol.ok(
                    rid, {"protocol": protocol.PROTOCOL_VERSION, "studio_id": studio_id, "start": mode}
                ),
            )

        async def snapshot(payload: dict[str, Any]) -> dict[str, Any]:
            return await hub.run(snapshots.host, hub.ctx, conn.event_id, studio_id)

        async def check_link() -> None:
            """Actions change what goes on air: the link is checked at each one, not only at connect."""
            if not await hub.run(still_allowed):  # the access re-check closes the socket (4401) shortly
                raise DomainError("host.link_revoked", "this host link was revoked: ask for a new one")

        def action(name: str) -> Handler:
            async def run(payload: dict[str, Any]) -> dict[str, Any]:
                qid = check_id(payload.get("question_id"), field="question_id", code="question.invalid")
                version = payload.get("version")
                if version is not None:
                    version = check_id(version, field="version", code="question.invalid")
                await check_link()
                q = await hub.run(_host_action, hub, conn.event_id, studio_id, qid, name, actor, version)
                return {"question": q}

            return run

        async def next_question(payload: dict[str, Any]) -> dict[str, Any]:
            """Put the first queued question on air (the current one becomes answered)."""
            await check_link()
            q = await hub.run(_host_next, hub, conn.event_id, studio_id, actor)
            return {"question": q}

        return hello, {
            "snapshot": snapshot,
            "host.next": next_question,
            "host.on_air": action("on_air"),
            "host.answer": action("answer"),
            "host.skip": action("skip"),
        }

    await _run(ws, "host", make, still_allowed)


def _host_next(hub: Hub, event_id: int, studio_id: int, actor: str) -> dict[str, Any] | None:
    with hub.ctx.read() as db:
        first = questions.queued_in(db, studio_id)
    if not first or first[0].id is None:
        raise DomainError("queue.empty", "the queue is empty")
    return questions.moderate(hub.ctx, event_id, first[0].id, "on_air", actor, expected_version=first[0].version)


def _host_action(
    hub: Hub, event_id: int, studio_id: int, qid: int, action: str, actor: str, version: int | None
) -> dict[str, Any]:
    with hub.ctx.read() as db:
        q = db.get(questions.Question, qid)
        if q is None or q.studio_id != studio_id:
            raise DomainError("question.unknown", f"there is no question {qid} in this studio's queue")
    return questions.moderate(hub.ctx, event_id, qid, action, actor, expected_version=version)
