"""Log lines: the familiar text (default) or one JSON object per line
(``QA_LOG_FORMAT=json``), for the hub, uvicorn's access log and the worker alike.

A JSON line holds ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
``exc_info`` (the traceback text) when there is one, and ``request_id`` /
``socket_id`` when the line was written for a request or a socket. Those two
travel in context variables: :class:`RequestId` sets the first for every HTTP
request (and echoes it in ``X-Request-ID``); the websocket endpoint sets the
second with :func:`set_socket_id` / :func:`reset_socket_id`. Service calls run in
threads by anyio, which copies the context: their lines carry the ids too.

Host-link tokens are redacted from uvicorn's lines before any formatter sees them
(server.install_log_redaction), in either format.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import uuid
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .server import install_log_redaction
from .settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_ID_HEADER = b"x-request-id"
_CLIENT_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")

request_id: ContextVar[str | None] = ContextVar("qa_request_id", default=None)
socket_id: ContextVar[str | None] = ContextVar("qa_socket_id", default=None)


def set_socket_id(value: str) -> Token[str | None]:
    """Lines written from here on in this task (and the threads it starts) name the socket."""
    return socket_id.set(value)


def reset_socket_id(token: Token[str | None]) -> None:
    socket_id.reset(token)


class _Context(logging.Filter):
    """Stamps each record with the request and socket it was written for."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        if not hasattr(record, "socket_id"):
            record.socket_id = socket_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in a message or a
    traceback are escaped); ASCII only, so a stray byte never breaks a line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "socket_id"):
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            # '%s - "%s %s HTTP/%s" %d': the same as fields (the path already redacted)
            client, method, path, _version, status = record.args
            out |= {"client": client, "method": method, "path": path, "status": status}
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc_info"] = record.exc_text
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str)


def make_handler(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    """The handler :func:`configure_logging` installs (tests attach one to a logger)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(_Context())
    handler.qa_handler = True  # type: ignore[attr-defined]
    return handler


def configure_logging(settings: Settings) -> None:
    """Root logging for the CLI's commands (serve, demo, worker, …), INFO and up, on
    stderr, in ``QA_LOG_FORMAT``. Like logging.basicConfig, it leaves alone a root
    logger that something else configured (a test runner); called again, it
    replaces its own handler. uvicorn's loggers propagate here in json mode
    (server.uvicorn_kwargs), and Python's warnings and uncaught exceptions are
    logged rather than printed, so no raw line slips between the objects; in text
    mode uvicorn keeps its own format, as before."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "qa_handler", False)]
    if root.handlers and not ours:
        install_log_redaction()
        return
    for handler in ours:
        root.removeHandler(handler)
    root.addHandler(make_handler(settings.log_format))
    root.setLevel(logging.INFO)
    install_log_redaction()
    if settings.log_format == "json":  # what Python would print itself goes through the formatter too
        logging.captureWarnings(True)
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("qa_service").critical("uncaught exception", exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("qa_service").error("uncaught exception in thread %s", name, exc_info=args.exc_value)


class RequestId:
    """Gives every HTTP request an id for its log lines: the client's
    ``X-Request-ID`` if it is short plain ASCII (``[A-Za-z0-9._-]{1,64}``, so it
    can neither forge a log line nor bloat one), else a new one. It is echoed in
    the response's ``X-Request-ID``. Outermost middleware: every line of the
    request, uvicorn's access line included, carries it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == REQUEST_ID_HEADER), None)
        rid = given.decode("ascii") if given and _CLIENT_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        header = (REQUEST_ID_HEADER, rid.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != REQUEST_ID_HEADER]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        token = request_id.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
