"""The web pages (viewer, console, host display) and their security headers.
Every asset is served from here: venues may have no internet."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .settings import Settings

ROOT = Path(__file__).resolve().parent.parent
STAFF = ROOT / "moderator_ui" / "static"
VIEWER = ROOT / "viewer_ui" / "static"
EMBED_PATH = "/embed"
VIEWER_PATH = "/"
STREAM_SOURCES_SECONDS = 10.0  # a reloaded event's stream origins reach the viewer page's CSP within this
log = logging.getLogger(__name__)


class StreamSources:
    """The origins of the loaded event's streams (HLS: fetched and played; embedded
    players: framed), read from the database at most every few seconds and shared."""

    def __init__(self) -> None:
        self.value: tuple[list[str], list[str]] = ([], [])
        self.read_at = float("-inf")

    async def get(self, app: Any) -> tuple[list[str], list[str]]:
        hub = getattr(app.state, "hub", None)
        now = time.monotonic()
        if hub is None or now - self.read_at < STREAM_SOURCES_SECONDS:
            return self.value
        self.read_at = now  # one reader at a time; the others serve the last value meanwhile
        from .domain.errors import DomainError
        from .services.context import OUTAGE_ERRORS
        from .services.streams import sources

        def read(event_id: int) -> tuple[list[str], list[str]]:
            with hub.ctx.read() as db:
                return sources(db, event_id)

        try:
            self.value = await hub.run(read, await hub.event_id())
        except DomainError:  # no event loaded yet: no streams
            self.value = ([], [])
        except OUTAGE_ERRORS as exc:
            log.warning("stream origins not read (%r); the viewer page keeps the last ones", exc)
        return self.value


class SecurityHeaders:
    """CSP and friends on every HTTP response: scripts only from this origin,
    no inline script, so viewer text can never run even if it slipped into markup.
    Sockets may connect to the configured public origin only; the ``Host`` header
    is never reflected. HSTS when cookies are HTTPS-only. The viewer page may also
    fetch and play the loaded event's HLS streams and frame its embedded players:
    those origins, and no others (StreamSources)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        # http→ws, https→wss. CSP has no syntax for an IPv6 literal ("ws://[::1]:8000" is
        # dropped with a console error); 'self' already admits sockets to the page's own origin.
        sockets = sorted("ws" + origin[4:] for origin in settings.allowed_origins if "[" not in origin)

        def csp(ancestors: str, media: Sequence[str] = (), frames: Sequence[str] = ()) -> str:
            # hls.js fetches playlists and segments (connect-src) and plays them from a
            # MediaSource (blob:); a browser with HLS of its own plays the URL (media-src).
            players = f"media-src 'self' blob: {' '.join(media)}; " if media else ""
            framed = f"frame-src {' '.join(frames)}; " if frames else ""
            connect = " ".join(("'self'", *sockets, *media))
            return (
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                f"connect-src {connect}; {players}{framed}"
                f"frame-ancestors {ancestors}; base-uri 'none'; form-action 'self'"
            )

        self.csp = csp
        common = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
        if settings.secure_cookies:
            common.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        self.common = common
        self.headers = [(b"content-security-policy", csp("'none'").encode("latin-1")), *common]
        # The widget may be framed by the partner sites named in QA_EMBED_ORIGINS, and only by them.
        partners = " ".join(settings.embed_origin_list) or "'none'"
        self.embed_headers = [(b"content-security-policy", csp(partners).encode("latin-1")), *common]
        self.streams = StreamSources()
        self._viewer: tuple[tuple[list[str], list[str]], list[tuple[bytes, bytes]]] | None = None

    async def viewer_headers(self, app: Any) -> list[tuple[bytes, bytes]]:
        media, frames = await self.streams.get(app)
        if self._viewer is None or self._viewer[0] != (media, frames):
            policy = self.csp("'none'", media, frames).encode("latin-1")
            self._viewer = ((media, frames), [(b"content-security-policy", policy), *self.common])
        return self._viewer[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        path = scope["path"]
        if path == VIEWER_PATH:
            extra = await self.viewer_headers(scope["app"])
        else:
            extra = self.embed_headers if path == EMBED_PATH else self.headers

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


async def viewer_page(request: Request) -> Response:
    """The viewer page; at /embed the same page as a widget for partner sites (the ask
    box and "my questions", its height told to the framing page by postMessage)."""
    return FileResponse(VIEWER / "index.html", media_type="text/html; charset=utf-8")


async def console_page(request: Request) -> Response:
    return FileResponse(STAFF / "console.html", media_type="text/html; charset=utf-8")


async def report_page(request: Request) -> Response:
    """The event's report for staff; the page asks for a login like the console. Its
    CSP is the staff pages' own: scripts from here only (Chart.js vendored), no eval."""
    return FileResponse(STAFF / "report.html", media_type="text/html; charset=utf-8")


async def staff_page(request: Request) -> Response:
    """Staff management (accounts, host links): the page asks /api/me and shows itself to admins only."""
    return FileResponse(STAFF / "staff.html", media_type="text/html; charset=utf-8")


async def admin_page(request: Request) -> Response:
    """The event edited live (studios, segments, speakers): the page asks /api/me and
    shows itself to admins only; the API behind it refuses everyone else."""
    return FileResponse(STAFF / "admin.html", media_type="text/html; charset=utf-8")


async def host_page(request: Request) -> Response:
    from .hub.endpoints import studio_from_token

    hub = request.app.state.hub
    studio = await hub.run(studio_from_token, hub, request.path_params["token"])
    if studio is None:
        return HTMLResponse(
            "<!doctype html><meta charset='utf-8'><title>Invalid link</title>"
            "<p>This host display link is invalid or was revoked. Ask the moderators for a new one.</p>",
            status_code=404,
        )
    return FileResponse(STAFF / "host.html", media_type="text/html; charset=utf-8")


def routes() -> list[BaseRoute]:
    return [
        Route("/", viewer_page, include_in_schema=False),
        Route(EMBED_PATH, viewer_page, include_in_schema=False),
        Route("/moderate", console_page, include_in_schema=False),
        Route("/staff", staff_page, include_in_schema=False),
        Route("/admin", admin_page, include_in_schema=False),
        Route("/report", report_page, include_in_schema=False),
        Route("/host/{token}", host_page, include_in_schema=False),
        Mount("/static", StaticFiles(directory=STAFF), name="static"),
        Mount("/viewer", StaticFiles(directory=VIEWER), name="viewer"),
    ]
