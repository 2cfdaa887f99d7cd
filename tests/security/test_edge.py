"""The edge, attacked as an outsider would: forged keys, proxy headers, huge
bodies and headers, slow headers, connection floods, tokens in logs, the Host
header. Real server (uvicorn with the production protocol stack), real Redis and SQL."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from itsdangerous import TimestampSigner
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from qa_service.edge import real_client
from qa_service.keys import signing_key
from qa_service.security import Signer
from qa_service.settings import Settings, load_settings

from ..support import SECOND, start_server, ws_client

pytestmark = pytest.mark.integration


def _ask(c: Any, speaker_id: int, text: str = "What is the payback period of the new line?") -> dict[str, Any]:
    c.request("hello", {})
    return c.request(
        "question.ask", {"client_id": uuid.uuid4().hex, "speaker_id": speaker_id, "text": text, "language": "en"}
    )


def _live_speaker(sample: dict[str, Any]) -> int:
    return int(sample["speakers"]["moscow"][0].id)


@pytest.fixture
def raw() -> Iterator[Any]:
    """Open raw TCP connections (closed at teardown)."""
    opened: list[socket.socket] = []

    def open_(port: int) -> socket.socket:
        opened.append(socket.create_connection(("127.0.0.1", port), timeout=10 * SECOND))
        return opened[-1]

    yield open_
    for s in opened:
        s.close()


def _read_all(s: socket.socket, limit: float) -> tuple[bytes, bool]:
    """Read until the server closes the connection: (what came, whether it closed
    within ``limit`` seconds). A server that closes with unread input resets the
    connection, which may swallow its last reply: callers accept a close either way."""
    s.settimeout(limit)
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except ConnectionResetError:
        return out, True
    except TimeoutError:
        return out, False
    return out, True


# ── 1. safe defaults ────────────────────────────────────────────────────────
def _forged_session(secret: str, data: dict[str, Any]) -> str:
    """A qa_session cookie as Starlette's SessionMiddleware signs it."""
    import base64
    import json

    payload = base64.b64encode(json.dumps(data).encode())
    return TimestampSigner(secret).sign(payload).decode()


def test_without_a_secret_the_key_is_random_private_and_stable(settings_factory, tmp_path) -> None:
    settings = settings_factory(secret_key=None, data_dir=tmp_path / "fresh")
    key = signing_key(settings)
    path = tmp_path / "fresh" / "secret_key"
    assert key != "dev-insecure-secret" and len(key) >= 48
    assert path.stat().st_mode & 0o777 == 0o600 and (tmp_path / "fresh").stat().st_mode & 0o777 == 0o700
    from qa_service import keys

    keys._generated_key.cache_clear()  # a restart reads the same key back
    assert signing_key(settings) == key
    other = settings_factory(secret_key=None, data_dir=tmp_path / "other")
    assert signing_key(other) != key  # each install its own


def test_a_cookie_forged_with_the_old_placeholder_key_logs_nobody_in(settings_factory, ctx, sample) -> None:
    from sqlmodel import select

    from qa_service.db.models import User
    from qa_service.services.accounts import start_session

    settings = settings_factory(secret_key=None)
    with ctx.read() as db:
        uid = db.exec(select(User.id).where(User.username == "mod1")).one()
    session = {"uid": uid, "sid": start_session(ctx, uid), "csrf": "c"}  # a live session row
    studio = sample["studios"]["moscow"]
    srv = start_server(settings)
    try:
        forged = _forged_session("dev-insecure-secret", session)
        assert httpx.get(f"{srv.base}/api/me", cookies={"qa_session": forged}).status_code == 401
        forged_link = Signer("dev-insecure-secret").host_token(studio.id, studio.host_token_version)
        assert httpx.get(f"{srv.base}/host/{forged_link}").status_code == 404
        # The same cookie and link under this install's generated key do open: only the key was wrong.
        real = _forged_session(signing_key(settings), session)
        assert httpx.get(f"{srv.base}/api/me", cookies={"qa_session": real}).status_code == 200
        real_link = Signer(signing_key(settings)).host_token(studio.id, studio.host_token_version)
        assert httpx.get(f"{srv.base}/host/{real_link}").status_code == 200
    finally:
        srv.stop()


@pytest.mark.parametrize(
    "secret", ["x" * 64, "change-me", "0123456789abcdef0123456789abcdef", "abababababababababababababababababab"]
)
def test_production_refuses_weak_secrets_without_printing_them(secret: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env |= {
        "QA_ENVIRONMENT": "production",
        "QA_SECRET_KEY": secret,
        "QA_PUBLIC_URL": "https://qa.example.org",
        "QA_DATA_DIR": str(tmp_path),
    }
    out = subprocess.run(
        [sys.executable, "-m", "qa_service.cli", "db", "upgrade"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 2 and "QA_SECRET_KEY is too weak" in out.stderr
    assert secret not in out.stderr and secret[-8:] not in out.stderr


def test_production_needs_a_key_and_a_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    import secrets

    from pydantic import ValidationError

    for k in list(os.environ):
        if k.startswith("QA_"):
            monkeypatch.delenv(k)
    with pytest.raises(ValidationError, match="needs QA_SECRET_KEY"):
        load_settings(environment="production", public_url="https://qa.example.org")
    with pytest.raises(ValidationError, match="QA_PUBLIC_URL"):
        load_settings(environment="production", secret_key=secrets.token_urlsafe(32))
    good = load_settings(environment="production", secret_key=secrets.token_urlsafe(32), public_url="https://q.org")
    assert good.secure_cookies and good.allowed_origins == {"https://q.org"}


def test_csp_names_the_public_origin_and_never_reflects_host(settings_factory, event_id) -> None:
    srv = start_server(settings_factory(public_url="https://qa.example.org", cookie_secure=True))
    try:
        r = httpx.get(f"{srv.base}/", headers={"Host": "evil.example"})
        csp = r.headers["content-security-policy"]
        assert "evil.example" not in csp
        assert "connect-src 'self' wss://qa.example.org;" in csp
        assert r.headers["strict-transport-security"].startswith("max-age=")
    finally:
        srv.stop()
    plain = start_server(settings_factory())
    try:
        assert "strict-transport-security" not in httpx.get(f"{plain.base}/").headers  # HSTS only with HTTPS cookies
    finally:
        plain.stop()


# ── 2. trusted proxies ─────────────────────────────────────────────────────
def test_real_client_walks_the_chain_from_the_right() -> None:
    import ipaddress

    lb = [ipaddress.ip_network("10.0.0.0/8")]
    xff = [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.7, 10.0.0.2")]
    assert real_client("10.0.0.1", xff, lb) == "203.0.113.7"  # the forged 6.6.6.6 is never reached
    assert real_client("198.51.100.9", xff, lb) == "198.51.100.9"  # not through our proxy: headers ignored
    assert real_client("10.0.0.1", xff, []) == "10.0.0.1"  # nobody trusted by default
    fwd = [(b"forwarded", b'for="[2001:db8::7]:4711";proto=https, for=10.0.0.3')]
    assert real_client("10.0.0.1", fwd, lb, "forwarded") == "2001:db8::7"
    assert real_client("::ffff:10.0.0.1", xff, lb) == "203.0.113.7"  # IPv4-mapped peer is that IPv4

    # A client's own Forwarded header beside the balancer's X-Forwarded-For: only the
    # header the balancer writes counts (QA_PROXY_HEADER), the other passes through untouched.
    both = [(b"forwarded", b"for=198.51.100.77"), (b"x-forwarded-for", b"203.0.113.5")]
    assert real_client("10.0.0.1", both, lb) == "203.0.113.5"
    assert real_client("10.0.0.1", both, lb, "forwarded") == "198.51.100.77"
    junk = [(b"x-forwarded-for", b"<script>, 10.0.0.2")]
    assert real_client("10.0.0.1", junk, lb) == "10.0.0.2"  # garbage stops the walk at the last vouched hop
    assert real_client("10.0.0.1", [], lb) == "10.0.0.1"


def test_an_ipv6_subscriber_counts_as_one_address() -> None:
    from qa_service.edge import client_key

    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7" and client_key("192.0.2.7") == "192.0.2.7"


def _asks_accepted(srv: Any, speaker: int, n: int, forwarded: bool) -> int:
    accepted = 0
    for i in range(n):
        headers = {"X-Forwarded-For": f"198.51.100.{i + 1}"} if forwarded else {}
        with ws_client(f"{srv.ws_base}/ws/viewer", additional_headers=headers) as c:
            accepted += bool(_ask(c, speaker, f"Question number {i} about the payback period?")["ok"])
    return accepted


def test_rotating_x_forwarded_for_does_not_escape_the_address_limit(settings_factory, sample) -> None:
    # Default: no trusted proxy. Each ask from a new viewer token with a new forged
    # X-Forwarded-For: the per-address limit (4 × 2 a minute) still sees one address.
    srv = start_server(settings_factory(questions_per_minute=2))
    try:
        assert _asks_accepted(srv, _live_speaker(sample), 12, forwarded=True) == 8
    finally:
        srv.stop()


def test_behind_a_trusted_balancer_each_viewer_has_its_own_address(settings_factory, sample) -> None:
    srv = start_server(settings_factory(questions_per_minute=2, trusted_proxies="127.0.0.1"))
    try:
        assert _asks_accepted(srv, _live_speaker(sample), 12, forwarded=True) == 12
    finally:
        srv.stop()


# ── 3. edge limits ─────────────────────────────────────────────────────────
@pytest.fixture
def edge_server(settings_factory: Any, event_id: int) -> Iterator[Any]:
    srv = start_server(
        settings_factory(
            max_connections_per_address=4, header_timeout_seconds=1.0, body_timeout_seconds=1.0, max_header_bytes=8192
        )
    )
    yield srv
    srv.stop()


def test_a_declared_huge_body_is_refused_before_it_is_read(edge_server, raw) -> None:
    s = raw(edge_server.server.config.port)
    s.sendall(
        b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 209715200\r\n\r\n" + b"{" * 1000
    )
    reply, closed = _read_all(s, 10 * SECOND)
    assert closed and reply.startswith(b"HTTP/1.1 413") and b"request.too_large" in reply


def test_a_chunked_body_is_cut_once_it_passes_the_cap(edge_server, raw) -> None:
    s = raw(edge_server.server.config.port)
    s.sendall(
        b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"a" * 65536
    sent = 0
    try:
        for _ in range(64):  # offers 4 MiB; the cap is 256 KiB
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    reply, closed = _read_all(s, 10 * SECOND)
    # Answered once the cap is passed, and the connection closed: the rest is never read.
    assert closed and reply.startswith(b"HTTP/1.1 413") and b"request.too_large" in reply, reply[:200]


def test_headers_that_never_finish_are_cut(edge_server, raw) -> None:
    s = raw(edge_server.server.config.port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    closed_after = None
    start = time.monotonic()
    s.settimeout(0.3)
    reply = b""
    for _ in range(int(60 * SECOND / 0.3)):  # a header byte every 0.3 s: slowloris
        try:
            s.sendall(b"X")
            chunk = s.recv(4096)
            if not chunk:
                closed_after = time.monotonic() - start
                break
            reply += chunk
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            closed_after = time.monotonic() - start
            break
    assert closed_after is not None, "a slowloris connection stayed open"
    assert closed_after < 20 * SECOND  # the deadline is 1 s; the sends went on for 60
    assert reply == b"" or reply.startswith(b"HTTP/1.1 408")


def test_oversized_headers_are_refused(edge_server, raw) -> None:
    s = raw(edge_server.server.config.port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 64 * 1024)
    reply, closed = _read_all(s, 10 * SECOND)
    assert closed, "64 KiB of headers were read on"
    assert reply == b"" or reply.startswith(b"HTTP/1.1 431")
    ok = httpx.get(f"{edge_server.base}/", headers={"X-Fine": "a" * 4000})
    assert ok.status_code == 200  # ordinary headers pass
    # Complete headers arriving in one read are counted too.
    whole = raw(edge_server.server.config.port)
    whole.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200 * 1024 + b"\r\n\r\n")
    reply, closed = _read_all(whole, 10 * SECOND)
    assert closed and not reply.startswith(b"HTTP/1.1 200")
    assert reply == b"" or reply.startswith(b"HTTP/1.1 431")


def test_a_body_that_never_finishes_is_cut_even_after_the_answer(edge_server, raw) -> None:
    # The app answers GET / without reading a body; a client then trickles body bytes
    # to hold the connection (uvicorn alone would read on for ever).
    s = raw(edge_server.server.config.port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nab")
    s.settimeout(0.3)
    start, closed_after = time.monotonic(), None
    while time.monotonic() - start < 60 * SECOND:
        try:
            s.sendall(b"x")
            if s.recv(65536) == b"":
                closed_after = time.monotonic() - start
                break
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            closed_after = time.monotonic() - start
            break
    assert closed_after is not None and closed_after < 20 * SECOND  # body deadline: 1 s


def test_idle_tcp_connections_count_against_the_address_cap(settings_factory, event_id, raw) -> None:
    # Connections that have not sent a request yet are counted too (a flood of idle
    # sockets would exhaust the hub's file descriptors).
    srv = start_server(settings_factory(max_connections_per_address=3, header_timeout_seconds=60))
    try:
        port = srv.server.config.port
        idle = [raw(port) for _ in range(3)]
        time.sleep(0.3 * SECOND)
        extra = raw(port)
        reply, closed = _read_all(extra, 10 * SECOND)
        assert closed and (reply == b"" or reply.startswith(b"HTTP/1.1 429"))
        idle[0].close()
        deadline = time.monotonic() + 10 * SECOND
        while True:  # one closed: room again
            try:
                if httpx.get(f"{srv.base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the cap did not free a slot"
            time.sleep(0.1)
    finally:
        srv.stop()


def test_one_address_holds_at_most_its_cap_of_connections(edge_server) -> None:
    url = f"{edge_server.ws_base}/ws/viewer"
    stack = contextlib.ExitStack()
    opened = [stack.enter_context(connect(url)) for _ in range(4)]
    try:
        with connect(url) as extra:
            with pytest.raises(ConnectionClosed) as closed:
                extra.recv(timeout=10 * SECOND)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
        r = httpx.get(f"{edge_server.base}/api/schedule")
        assert r.status_code == 429 and r.json()["error"]["code"] == "connections.too_many"
        assert int(r.headers["retry-after"]) > 0
        opened[0].close()  # one closed: room again
        deadline = time.monotonic() + 10 * SECOND
        while httpx.get(f"{edge_server.base}/api/schedule").status_code != 200:
            assert time.monotonic() < deadline, "the cap did not free a slot"
            time.sleep(0.05)
    finally:
        stack.close()


# ── 6. tokens never logged ─────────────────────────────────────────────────
class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_host_link_tokens_never_reach_the_logs(settings: Settings, sample) -> None:
    srv = start_server(settings, log_level="info", access_log=True)
    collect = _Collect()
    loggers = [logging.getLogger(n) for n in ("uvicorn.access", "uvicorn.error")]
    for lg in loggers:
        lg.addHandler(collect)
    try:
        studio = sample["studios"]["moscow"]
        token = Signer(settings.secret_key or "").host_token(studio.id, studio.host_token_version)
        assert httpx.get(f"{srv.base}/host/{token}").status_code == 200
        assert httpx.get(f"{srv.base}/api/host/{token}/queue").status_code == 200
        with ws_client(f"{srv.ws_base}/ws/host?token={token}") as host:
            assert host.request("hello", {})["ok"]
        time.sleep(0.2 * SECOND)
    finally:
        for lg in loggers:
            lg.removeHandler(collect)
        srv.stop()
    text = "\n".join(collect.lines)
    assert "/host/[redacted]" in text and "token=[redacted]" in text  # the lines are there …
    assert token not in text and token[:20] not in text  # … without the token


def test_data_directory_and_database_are_private(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env |= {"QA_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run(
        [sys.executable, "-m", "qa_service.cli", "db", "upgrade"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "data" / "qa.sqlite3").stat().st_mode & 0o777 == 0o600
