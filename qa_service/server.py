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
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .edge import Network, client_key, is_trusted_peer
from .settings import Settings

log = logging.getLogger(__name__)


def _reply_and_close(transport: asyncio.BaseTransport, status: bytes, message: bytes) -> None:
    if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
        transport.write(
            b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(message)).encode() + b"\r\nconnection: close\r\n\r\n" + message
        )
    transport.close()


class _HeadersTooLarge(Exception):
    pass


class _GuardedHttpTools(HttpToolsProtocol):
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 16 * 1024
    max_per_address: int = 1000
    trusted: tuple[Network, ...] = ()
    open_by_address: dict[str, int]  # per generated class, i.e. per server

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._awaiting_headers = False
        self._header_bytes = 0
        self._counted: str | None = None
        peer = self.client[0] if self.client else None
        if peer is not None and not is_trusted_peer(peer, self.trusted):
            key = client_key(peer)
            if self.open_by_address.get(key, 0) >= self.max_per_address:
                log.warning("connection cap: %s already holds %d connections; refused", key, self.max_per_address)
                _reply_and_close(transport, b"429 Too Many Requests", b"too many connections from your address")
                return
            self.open_by_address[key] = self.open_by_address.get(key, 0) + 1
            self._counted = key
        self._await_headers()

    def _uncount(self) -> None:
        if self._counted is not None:
            left = self.open_by_address.get(self._counted, 1) - 1
            if left > 0:
                self.open_by_address[self._counted] = left
            else:
                self.open_by_address.pop(self._counted, None)
            self._counted = None

    def _arm(self, seconds: float, on_expiry: Callable[[], None]) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(seconds, on_expiry)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _await_headers(self) -> None:
        self._awaiting_headers = True
        self._header_bytes = 0
        self._arm(self.header_timeout, self._headers_too_slow)

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if self._awaiting_headers and not self.transport.is_closing():
            log.warning("closing a connection from %s: no complete request headers within %.0fs", self.client[0] if self.client else "-", self.header_timeout)  # fmt: skip
            _reply_and_close(self.transport, b"408 Request Timeout", b"request headers took too long")

    def _body_too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.warning("closing a connection from %s: request body not complete within %.0fs", self.client[0] if self.client else "-", self.body_timeout)  # fmt: skip
            if self.cycle is not None and not self.cycle.response_started:
                _reply_and_close(self.transport, b"408 Request Timeout", b"request body took too long")
            else:
                self.transport.close()

    def _count_header_bytes(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > self.max_header_bytes:
            raise _HeadersTooLarge

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        was_awaiting = self._awaiting_headers
        self._began = False
        try:
            super().data_received(data)
        finally:
            if self._header_bytes > self.max_header_bytes and not self.transport.is_closing():
                log.warning("closing a connection: request headers over %d bytes", self.max_header_bytes)
                _reply_and_close(self.transport, b"431 Request Header Fields Too Large", b"request headers too large")
        if was_awaiting and self._awaiting_headers and not self._began and not self.transport.is_closing():
            # Every byte of this chunk was header bytes of a request still unfinished
            # (httptools buffers a header until it is complete: count it here).
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                log.warning("closing a connection: request headers over %d bytes", self.max_header_bytes)
                _reply_and_close(self.transport, b"431 Request Header Fields Too Large", b"request headers too large")

    def send_400_response(self, msg: str) -> None:
        if self._header_bytes > self.max_header_bytes:
            return  # our own parser abort: answered 431 above
        super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._began = True
        self._await_headers()

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        # The body (if any) must arrive within its own deadline, even when the app has
        # answered without reading it (uvicorn would otherwise read on for ever).
        self._arm(self.body_timeout, self._body_too_slow)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        # The websocket protocol takes the transport over; the app's ConnectionCap counts it from here.
        self._disarm()
        self._uncount()
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._uncount()
        super().connection_lost(exc)


def guarded_http_protocol(settings: Settings) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with deadlines for headers and bodies, a header
    size cap and a per-address cap on open connections (trusted proxies exempt).
    One class per server: it holds that server's connection counts."""
    return type(
        "GuardedHttpTools",
        (_GuardedHttpTools,),
        {
            "header_timeout": settings.header_timeout_seconds,
            "body_timeout": settings.body_timeout_seconds,
            "max_header_bytes": settings.max_header_bytes,
            "max_per_address": settings.max_connections_per_address,
            "trusted": tuple(settings.proxy_networks),
            "open_by_address": {},
        },
    )


def uvicorn_kwargs(settings: Settings) -> dict[str, Any]:
    # json: no logging config of uvicorn's own; its loggers propagate to the root
    # handler of qa_service.logs.configure_logging (one JSON object per line).
    logging_config: dict[str, Any] = {"log_config": None} if settings.log_format == "json" else {}
    return logging_config | {
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
