"""Staff logins, accounts, sessions and host links, as an attacker would try them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlmodel import select
from websockets.exceptions import ConnectionClosed

from qa_service.db.models import StaffSession, User
from qa_service.domain.errors import DomainError
from qa_service.security import Signer
from qa_service.services import accounts

from ..conftest import MOD_PASSWORD
from ..hub.test_fanout import closed_with, moderator_ws
from ..support import SECOND, cookie_header, start_server, ws_client
from ..test_cli import run

pytestmark = pytest.mark.integration


@contextmanager
def client_from(base: str, address: str) -> Iterator[httpx.Client]:
    """An HTTP client whose connections come from ``address`` (any of 127.0.0.0/8 on Linux)."""
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=base, transport=transport, timeout=30 * SECOND) as client:
        yield client


def _login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    return client.post("/api/login", json={"username": username, "password": password})


def _closes_with(c: Any, within: float) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            c.pump(0.2)
    return closed.value.rcvd.code if closed.value.rcvd is not None else None


class Verifications:
    """Counts argon2 verifications (wherever they run), how many ran at once, and on which threads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, hold: float = 0.0) -> None:
        self.calls = 0
        self.running = 0
        self.most = 0
        self.threads: set[str] = set()
        self._lock = threading.Lock()
        real = PasswordHasher.verify

        def verify(hasher: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
            with self._lock:
                self.calls += 1
                self.running += 1
                self.most = max(self.most, self.running)
                self.threads.add(threading.current_thread().name)
            try:
                time.sleep(hold)
                return real(hasher, hash, password)
            finally:
                with self._lock:
                    self.running -= 1

        monkeypatch.setattr(PasswordHasher, "verify", verify)


# ── limits ─────────────────────────────────────────────────────────────────
@pytest.fixture
def limited_server(settings_factory, event_id) -> Iterator[Any]:
    srv = start_server(settings_factory(login_attempts_per_address=5, login_attempts_per_account=3))
    yield srv
    srv.stop()


def test_an_address_guessing_passwords_gets_429_and_other_moderators_still_log_in(limited_server) -> None:
    with client_from(limited_server.base, "127.0.0.2") as attacker:
        # Five wrong passwords on five names (under each account's limit), then the address is cut off.
        answers = [_login(attacker, name, "wrong-password") for name in ("mod1", "mod2", "x1", "x2", "x3", "mod2")]
        assert [r.status_code for r in answers] == [401] * 5 + [429]
        assert answers[-1].json()["error"]["code"] == "rate.limited"
        assert 55 <= int(answers[-1].headers["retry-after"]) <= 60
        assert _login(attacker, "mod2", MOD_PASSWORD).status_code == 429  # the address, even with the password
    with client_from(limited_server.base, "127.0.0.3") as colleague:
        assert _login(colleague, "mod2", MOD_PASSWORD).status_code == 200
        assert _login(colleague, "mod1", MOD_PASSWORD).status_code == 200


def test_the_account_limit_holds_across_addresses_and_blocks_that_account_only(limited_server) -> None:
    """The trade-off: someone guessing mod1's password from many addresses locks mod1
    out for a minute (docs/security.md); everyone else logs in."""
    for i, address in enumerate(("127.0.0.4", "127.0.0.5", "127.0.0.6")):
        with client_from(limited_server.base, address) as guesser:
            assert _login(guesser, ("mod1", "MOD1", "Ｍｏｄ1")[i], "wrong-password").status_code == 401
    with client_from(limited_server.base, "127.0.0.7") as owner:
        refused = _login(owner, "mod1", MOD_PASSWORD)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 55
        assert _login(owner, "mod2", MOD_PASSWORD).status_code == 200


# ── argon2: the same cost for every answer, and bounded ────────────────────
def test_unknown_and_disabled_users_cost_one_argon2_verification_like_a_wrong_password(
    server, ctx, monkeypatch
) -> None:
    """Usernames cannot be told apart by time: every login attempt verifies one hash."""
    with ctx.transaction() as (db, _):
        hashed = accounts.hash_password("x" * 12)
        db.add(User(username="gone", username_key="gone", password_hash=hashed, role="host", disabled=True))
    verifications = Verifications(monkeypatch)
    with httpx.Client(base_url=server.base, timeout=30 * SECOND) as client:
        for name, password in (("mod1", "wrong-password"), ("nobody", "wrong-password"), ("gone", "x" * 12)):
            before = verifications.calls
            r = _login(client, name, password)
            assert r.status_code == 401 and r.json()["error"]["code"] == "auth.invalid"
            assert verifications.calls == before + 1, name


def test_concurrent_logins_never_run_more_verifications_at_once_than_login_concurrency(
    settings_factory, event_id, monkeypatch
) -> None:
    srv = start_server(settings_factory(login_concurrency=2))
    verifications = Verifications(monkeypatch, hold=0.1)
    results: list[int] = []

    def one(i: int) -> None:
        with client_from(srv.base, f"127.0.1.{i + 1}") as client:
            results.append(_login(client, f"mod{i % 2 + 1}", MOD_PASSWORD).status_code)

    try:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        # Meanwhile other requests are served: logins waiting for argon2 hold no shared thread.
        with httpx.Client(base_url=srv.base, timeout=30 * SECOND) as other:
            assert other.get("/api/schedule").status_code == 200
            assert any(t.is_alive() for t in threads), "the logins ended before the other request: no overlap"
        for t in threads:
            t.join(60 * SECOND)
    finally:
        srv.stop()
    assert results == [200] * 10
    assert verifications.most == 2, verifications.most
    assert all(name.startswith("argon2") for name in verifications.threads), verifications.threads


# ── usernames ──────────────────────────────────────────────────────────────
def test_usernames_are_one_name_after_normalising_and_homoglyphs_are_refused(ctx) -> None:
    anna = accounts.add_user(ctx, "Anna", "first-password", "moderator")
    again = accounts.add_user(ctx, "ＡＮＮＡ", "second-password", "admin")  # fullwidth: the same name
    assert again.id == anna.id and again.role == "admin" and again.username == "Anna"
    for bad in ("аnna", "Anna\u200b", "an na", "ánna", "", "a" * 65, "anna/../x"):  # Cyrillic а, zero-width space, …
        with pytest.raises(DomainError) as refused:
            accounts.add_user(ctx, bad, "some-password", "moderator")
        assert refused.value.code == "user.name_invalid", bad
    with ctx.read() as db:
        assert len(db.exec(select(User)).all()) == 1
    for name in ("anna", "ANNA", "ａｎｎａ"):
        user = accounts.authenticate(ctx, name, "second-password")
        assert user is not None and user.id == anna.id
    assert accounts.authenticate(ctx, "аnna", "second-password") is None
    assert accounts.authenticate(ctx, "anna", "first-password") is None


# ── sessions ───────────────────────────────────────────────────────────────
def test_each_login_gets_a_fresh_session_and_logout_ends_only_that_one(server, ctx) -> None:
    with (
        httpx.Client(base_url=server.base, timeout=30 * SECOND) as first,
        httpx.Client(base_url=server.base, timeout=30 * SECOND) as second,
    ):
        for c in (first, second):
            r = _login(c, "mod1", MOD_PASSWORD)
            c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        cookie_before = cookie_header(first)
        _login(first, "mod1", MOD_PASSWORD)  # logging in again rotates the session
        assert cookie_header(first) != cookie_before
        with ctx.read() as db:
            sessions = db.exec(select(StaffSession)).all()
        assert len({s.id for s in sessions}) == 3
        assert first.post("/api/logout").status_code == 200
        assert first.get("/api/me").status_code == 401
        assert second.get("/api/me").status_code == 200


def test_users_disable_enable_and_passwd_end_every_session_at_once(server, settings, moderator) -> None:
    with httpx.Client(base_url=server.base, timeout=30 * SECOND) as other:
        assert _login(other, "mod1", MOD_PASSWORD).status_code == 200
        recheck = settings.access_recheck_seconds
        with moderator_ws(server, moderator) as console:
            assert console.request("hello")["ok"]
            disabled = run(settings, "users", "disable", "MOD1")  # any form of the name
            assert disabled.returncode == 0, disabled.stderr
            assert _closes_with(console, 3 * recheck + 5 * SECOND) == 4401
        assert moderator.get("/api/me").status_code == 401
        assert other.get("/api/me").status_code == 401
        assert _login(other, "mod1", MOD_PASSWORD).status_code == 401

        enabled = run(settings, "users", "enable", "mod1")
        assert enabled.returncode == 0, enabled.stderr
        assert moderator.get("/api/me").status_code == 401  # ended sessions stay ended
        assert _login(other, "mod1", MOD_PASSWORD).status_code == 200

        with moderator_ws(server, other) as console:
            assert console.request("hello")["ok"]
            changed = run(settings, "users", "passwd", "mod1", QA_NEW_USER_PASSWORD="a-new-password")
            assert changed.returncode == 0, changed.stderr
            assert _closes_with(console, 3 * recheck + 5 * SECOND) == 4401
        assert other.get("/api/me").status_code == 401
        assert _login(other, "mod1", MOD_PASSWORD).status_code == 401
        assert _login(other, "mod1", "a-new-password").status_code == 200

    by_flag = run(settings, "users", "passwd", "mod2", "--password", "another-password")
    assert by_flag.returncode == 0, by_flag.stderr
    unknown = run(settings, "users", "disable", "nobody")
    assert unknown.returncode == 2 and "nobody" in unknown.stderr
    short = run(settings, "users", "passwd", "mod2", "--password", "short")
    assert short.returncode == 2 and "8 characters" in short.stderr


def test_a_session_older_than_its_max_age_ends_and_its_open_socket_closes(server, settings, ctx, moderator) -> None:
    """The cookie expires after QA_SESSION_MAX_AGE; the server-side session must too,
    or a console socket left open would stay authorized for ever."""
    with ctx.read() as db:
        (session,) = db.exec(select(StaffSession)).all()
    assert accounts.session_user(ctx, session.user_id, session.id) is not None
    with moderator_ws(server, moderator) as console:
        assert console.request("hello")["ok"]
        with ctx.transaction() as (db, _):
            row = db.get(StaffSession, session.id)
            assert row is not None
            row.created_at -= timedelta(seconds=settings.session_max_age + 60)
            db.add(row)
        assert accounts.session_user(ctx, session.user_id, session.id) is None
        assert _closes_with(console, 3 * settings.access_recheck_seconds + 5 * SECOND) == 4401
    assert moderator.get("/api/me").status_code == 401
    with ctx.transaction() as (db, _):  # just within its age: still good
        row = db.get(StaffSession, session.id)
        assert row is not None
        row.created_at = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=settings.session_max_age - 60)
        db.add(row)
    assert accounts.session_user(ctx, session.user_id, session.id) is not None


def test_users_add_of_an_existing_name_updates_it_and_ends_its_sessions(server, settings, moderator) -> None:
    updated = run(settings, "users", "add", "Mod1", "--role", "admin", QA_NEW_USER_PASSWORD="replaced-password")
    assert updated.returncode == 0, updated.stderr
    assert moderator.get("/api/me").status_code == 401
    with httpx.Client(base_url=server.base, timeout=30 * SECOND) as c:
        r = _login(c, "mod1", "replaced-password")
        assert r.status_code == 200 and r.json()["role"] == "admin" and r.json()["user"] == "mod1"


# ── host links ─────────────────────────────────────────────────────────────
def test_an_expired_host_link_stops_opening_and_its_open_display_closes(server, settings, sample) -> None:
    studio = sample["studios"]["moscow"]
    signer = Signer(settings.secret_key)
    soon = signer.host_token(studio.id, studio.host_token_version, expires_at=datetime.now(UTC) + timedelta(seconds=2))
    assert httpx.get(f"{server.base}/host/{soon}").status_code == 200
    with ws_client(f"{server.ws_base}/ws/host?token={soon}") as host:
        assert host.request("hello")["ok"]
        assert _closes_with(host, 2 * SECOND + 3 * settings.access_recheck_seconds + 5 * SECOND) == 4401
    assert httpx.get(f"{server.base}/host/{soon}").status_code == 404
    assert closed_with(f"{server.ws_base}/ws/host?token={soon}") == (4401, [])
    past = signer.host_token(studio.id, studio.host_token_version, expires_at=datetime.now(UTC) - timedelta(hours=1))
    assert closed_with(f"{server.ws_base}/ws/host?token={past}") == (4401, [])
    forever = signer.host_token(studio.id, studio.host_token_version)
    assert signer.read_host_token(forever, now=datetime.now(UTC) + timedelta(days=3650)) is not None


def test_host_links_command_signs_links_that_expire(settings, ctx, event_id) -> None:
    signer = Signer(settings.secret_key)
    now = datetime.now(UTC)

    def tokens(*args: str, **env: str) -> list[str]:
        out = run(settings, "host-links", *args, **env)
        assert out.returncode == 0, out.stderr
        return [line.split("/host/", 1)[1].split()[0] for line in out.stdout.splitlines() if "/host/" in line]

    two_hours = tokens("--hours", "2")
    assert len(two_hours) == 9
    assert signer.read_host_token(two_hours[0], now=now + timedelta(hours=1, minutes=59)) is not None
    assert signer.read_host_token(two_hours[0], now=now + timedelta(hours=2, minutes=1)) is None
    by_setting = tokens(QA_HOST_LINK_HOURS="1")
    assert signer.read_host_token(by_setting[0], now=now + timedelta(minutes=61)) is None
    never = tokens("--no-expiry", QA_HOST_LINK_HOURS="1")
    assert signer.read_host_token(never[0], now=now + timedelta(days=365)) is not None
