"""ASGI middleware at the edge, before any route runs: who the client is, how many
connections it holds, how big its request body may be.

- :class:`ClientAddress` believes ``X-Forwarded-For`` / ``Forwarded`` only from the
  proxies listed in ``QA_TRUSTED_PROXIES`` (default: none), walking the chain from
  the right and stopping at the first address that is not a trusted proxy. A
  client can prepend anything it likes; it cannot get past our own proxy's entry.
- :class:`ConnectionCap` counts open sockets and requests in flight per client
  address in this process and refuses beyond ``QA_MAX_CONNECTIONS_PER_ADDRESS``.
- :class:`BodyLimit` caps request bodies while they are read: a declared
  ``Content-Length`` over the cap is refused before a byte is read, and a chunked
  body is cut as soon as it passes the cap (413 either way).

They are Starlette middleware (``create_app`` lists them outermost first), so
the app's exception handlers see what they raise.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .domain.errors import DomainError

log = logging.getLogger(__name__)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _error_body(code: str, message: str, **details: object) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "details": details}}).encode()


async def _send_error(send: Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _parse_ip(text: str) -> Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # Forwarded: for="[2001:db8::1]:4711"
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # 192.0.2.60:4711
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped  # ::ffff:192.0.2.1 is 192.0.2.1
    return address


def client_key(address: str, v6_prefix: int = 64) -> str:
    """What per-address limits, caps and bans count: an IPv4 address, or the /64 of
    an IPv6 one (a single subscriber holds a whole /64 and could rotate through it)."""
    parsed = _parse_ip(address)
    if parsed is None:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/{v6_prefix}", strict=False))
    return str(parsed)


def is_trusted_peer(peer: str, trusted: Sequence[Network]) -> bool:
    """Whether ``peer`` (a TCP peer address) is one of the trusted proxies."""
    address = _parse_ip(peer)
    return address is not None and any(address in net for net in trusted)


def forwarded_chain(headers: list[tuple[bytes, bytes]], header: str = "x-forwarded-for") -> list[str]:
    """The hops a request claims in ``header`` (the one the proxy writes), left
    (original client) to right (nearest proxy). Only that header counts: a client
    can send the other one, and the proxy would pass it on untouched."""
    hops: list[str] = []
    wanted = header.encode()
    for name, value in headers:
        if name != wanted:
            continue
        for element in value.decode("latin-1").split(","):
            if header == "forwarded":  # RFC 7239: for=…;proto=…, for=…
                for pair in element.split(";"):
                    key, _, val = pair.strip().partition("=")
                    if key.lower() == "for":
                        hops.append(val)
            else:
                hops.append(element.strip())
    return hops


def real_client(
    peer: str, headers: list[tuple[bytes, bytes]], trusted: Sequence[Network], header: str = "x-forwarded-for"
) -> str:
    """The client address: the TCP peer, unless the peer is a trusted proxy; then the
    rightmost hop of the forwarded chain that is not itself a trusted proxy. A hop
    that does not parse ends the walk at the last address a trusted proxy vouched for."""

    current = _parse_ip(peer)
    if current is None or not is_trusted_peer(peer, trusted):
        return peer
    for hop in reversed(forwarded_chain(headers, header)):
        address = _parse_ip(hop)
        if address is None:
            break  # garbage (or "unknown"): keep the last address a trusted proxy gave
        current = address
        if not any(address in net for net in trusted):
            break
    return str(current)


class ClientAddress:
    """Rewrite ``scope["client"]`` (and the scheme, from ``X-Forwarded-Proto``) for
    requests that arrive through a trusted proxy."""

    def __init__(self, app: ASGIApp, trusted: Sequence[Network], header: str = "x-forwarded-for") -> None:
        self.app = app
        self.trusted = list(trusted)
        self.header = header

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: it hands back the app's own, so no frame of this layer is
        # kept alive for the life of every socket.
        if scope["type"] in ("http", "websocket") and self.trusted and scope.get("client"):
            peer, port = scope["client"]
            client = real_client(peer, scope["headers"], self.trusted, self.header)
            if client != peer:
                scope = dict(scope, client=(client, 0))
                proto = dict(scope["headers"]).get(b"x-forwarded-proto", b"").decode("latin-1").strip().lower()
                if proto in ("http", "https"):
                    secure = proto == "https"
                    if scope["type"] == "websocket":
                        scope["scheme"] = "wss" if secure else "ws"
                    else:
                        scope["scheme"] = proto
        return self.app(scope, receive, send)


class Bypass:
    """Run middleware ``layer`` except for the scopes ``skip`` names, which go straight
    to the next layer. An idle websocket otherwise keeps one suspended frame of
    every middleware around it for its whole life: with 10,000 sockets, the headers,
    body, log-id and metrics layers (HTTP matters only) would cost megabytes."""

    def __init__(
        self, app: ASGIApp, layer: Callable[..., ASGIApp], skip: Callable[[Scope], bool], **kwargs: Any
    ) -> None:
        self.app = app
        self.wrapped = layer(app, **kwargs)
        self.skip = skip

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        return (self.app if self.skip(scope) else self.wrapped)(scope, receive, send)


def websocket(scope: Scope) -> bool:
    return bool(scope["type"] == "websocket")


def viewer_socket(scope: Scope) -> bool:
    """The public socket: it carries no cookie-based session."""
    return bool(scope["type"] == "websocket" and scope["path"] == "/ws/viewer")


class ConnectionCap:
    """At most ``limit`` open sockets + requests in flight per client address, per
    process. Beyond it: HTTP 429 with Retry-After; a socket is accepted and closed
    with 4429 (a browser only sees the code of an accepted socket)."""

    RETRY_AFTER = 10

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.open: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        address = client_key(scope["client"][0]) if scope.get("client") else "-"
        if self.open.get(address, 0) >= self.limit:
            log.warning("connection cap: %s already holds %d connections; refused", address, self.limit)
            if scope["type"] == "http":
                body = _error_body(
                    "connections.too_many",
                    f"too many connections from your address (limit {self.limit}); try again shortly",
                    retry_after=self.RETRY_AFTER,
                )
                await _send_error(send, 429, body, [(b"retry-after", str(self.RETRY_AFTER).encode())])
            else:
                await receive()  # websocket.connect
                await send({"type": "websocket.accept"})
                await send(
                    {"type": "websocket.close", "code": 4429, "reason": "too many connections from your address"}
                )
            return
        self.open[address] = self.open.get(address, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            left = self.open[address] - 1
            if left:
                self.open[address] = left
            else:
                del self.open[address]


class BodyTooLarge(DomainError):
    """Raised from ``receive`` inside a route: the app's DomainError handler answers 413."""

    status = 413


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes while reading them (413)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _too_large(self) -> bytes:
        return _error_body("request.too_large", f"request bodies are limited to {self.limit} bytes", limit=self.limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.limit
            except ValueError:
                too_big = False  # the server's parser refuses a malformed length itself
            if too_big:
                await _send_error(send, 413, self._too_large(), [(b"connection", b"close")])
                return
        received = 0
        over = False

        async def limited_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    over = True
                    raise BodyTooLarge(
                        "request.too_large", f"request bodies are limited to {self.limit} bytes", limit=self.limit
                    )
            return message

        async def closing_send(message: Message) -> None:
            if over and message["type"] == "http.response.start":  # do not read the rest of the body
                message = dict(message, headers=[*message.get("headers", []), (b"connection", b"close")])
            await send(message)

        await self.app(scope, limited_receive, closing_send)
