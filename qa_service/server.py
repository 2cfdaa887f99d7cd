"""How uvicorn runs the app: protocol choices, edge limits it enforces while
reading, and logs that never carry a token.

uvicorn limits neither how long a client may take to send its request headers
nor (with httptools) how large they may be: a slowloris client holds a
connection for ever with a byte every few seconds, and 1 MB of headers is read
in full. :func:`guarded_http_protocol` closes a connection whose headers take
longer than ``QA_HEADER_TIMEOUT_SECONDS`` (408) or grow past
``QA_MAX_HEADER_BYTES`` (431), whatever else it sends.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .settings import Settings

log = logging.getLogger(__name__)


def _reply_and_close(transport: asyncio.BaseTransport, status: bytes, message: bytes) -> None:
    if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
        transport.write(
            b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(message)).encode() + b"\r\nconnection: close\r\n\r\n" + message
        )
    transport.close()


class _GuardedHttpTools(HttpToolsProtocol):
    header_timeout: float = 10.0
    max_header_bytes: int = 16 * 1024

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._await_headers()

    def _await_headers(self) -> None:
        self._awaiting_headers = True
        self._header_bytes = 0
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _headers_done(self) -> None:
        self._awaiting_headers = False
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self._awaiting_headers and not self.transport.is_closing():
            log.warning("closing a connection from %s: no complete request headers within %.0fs", self.client[0] if self.client else "-", self.header_timeout)  # fmt: skip
            _reply_and_close(self.transport, b"408 Request Timeout", b"request headers took too long")

    def data_received(self, data: bytes) -> None:
        was_awaiting = self._awaiting_headers
        super().data_received(data)
        if was_awaiting and self._awaiting_headers:  # every byte of this chunk was header bytes
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes and not self.transport.is_closing():
                log.warning("closing a connection: request headers over %d bytes", self.max_header_bytes)
                _reply_and_close(self.transport, b"431 Request Header Fields Too Large", b"request headers too large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._awaiting_headers:  # the next request on a kept-alive connection
            self._await_headers()

    def on_headers_complete(self) -> None:
        self._headers_done()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_done()
        super().connection_lost(exc)


def guarded_http_protocol(settings: Settings) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a header deadline and a header size cap."""
    return type(
        "GuardedHttpTools",
        (_GuardedHttpTools,),
        {"header_timeout": settings.header_timeout_seconds, "max_header_bytes": settings.max_header_bytes},
    )


def uvicorn_kwargs(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "http": guarded_http_protocol(settings),
        "ws": "websockets-sansio",
        "ws_per_message_deflate": False,  # ≈25 KiB per idle socket instead of ≈60-120
        # A hard protocol cap above the app's own limit, so an oversize frame under
        # it gets a clear frame.too_large reply and only a huge one is cut (1009).
        "ws_max_size": settings.max_frame_bytes * 4,
        # Client addresses come from qa_service.edge.ClientAddress (QA_TRUSTED_PROXIES),
        # never from uvicorn's own trust list.
        "proxy_headers": False,
        "server_header": False,
        "log_level": "info",
    }


# ── logs without tokens ────────────────────────────────────────────────────
_TOKEN_PATTERNS = [
    (re.compile(r"(/host/)[^/?\s\"]+"), r"\1[redacted]"),
    (re.compile(r"([?&](?:token|viewer_token)=)[^&\s\"]+"), r"\1[redacted]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _TOKEN_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactTokens(logging.Filter):
    """Host-link tokens travel in paths (/host/<token>, /api/host/<token>/queue) and
    query strings (/ws/host?token=…): uvicorn's access and websocket lines would
    write them to every log. They are replaced by [redacted]."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_log_redaction() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
