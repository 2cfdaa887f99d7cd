"""Staff management over REST (api/staff.py): admins only, CSRF on writes, no password
hash in any answer, the last admin kept; host links issued here open the real host
socket, and revoking one (or its expiry) closes that display and only that one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select
from websockets.exceptions import ConnectionClosed

from qa_service.db.models import User
from qa_service.services import accounts

from ..hub.test_fanout import closed_with, moderator_ws
from ..support import SECOND, login, ws_client

pytestmark = pytest.mark.integration

ADMIN_PASSWORD = "admin-password"
ROUTES = [
    ("GET", "/api/staff/accounts", None),
    ("POST", "/api/staff/accounts", {"username": "zed", "role": "moderator"}),
    ("POST", "/api/staff/accounts/1/password", {}),
    ("POST", "/api/staff/accounts/1/disabled", {"disabled": True}),
    ("GET", "/api/staff/host-links", None),
    ("POST", "/api/staff/host-links", {"studio_id": 1, "hours": 1}),
    ("POST", "/api/staff/host-links/1/revoke", None),
]


@pytest.fixture
def admin(server: Any, ctx: Any) -> Iterator[httpx.Client]:
    accounts.add_user(ctx, "boss", ADMIN_PASSWORD, "admin")
    client = login(server.base, "boss", ADMIN_PASSWORD)
    yield client
    client.close()


def _call(client: httpx.Client, method: str, path: str, body: Any = None) -> httpx.Response:
    return client.request(method, path, json=body) if body is not None else client.request(method, path)


def _closes_with(c: Any, within: float) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        deadline = datetime.now(UTC) + timedelta(seconds=within)
        while datetime.now(UTC) < deadline:
            c.pump(0.2)
    return closed.value.rcvd.code if closed.value.rcvd is not None else None


def test_only_admins_may_manage_staff_and_writes_need_csrf(server: Any, moderator: httpx.Client, admin: Any) -> None:
    with httpx.Client(base_url=server.base) as anonymous:
        for method, path, body in ROUTES:
            r = _call(anonymous, method, path, body)
            assert r.status_code == 401 and r.json()["error"]["code"] == "auth.required", path
    for method, path, body in ROUTES:
        r = _call(moderator, method, path, body)
        assert r.status_code == 403 and r.json()["error"]["code"] == "auth.forbidden", path
    csrf = admin.headers.pop("X-CSRF-Token")
    for method, path, body in ROUTES:
        if method == "POST":
            r = _call(admin, method, path, body)
            assert r.status_code == 403 and r.json()["error"]["code"] == "auth.csrf", path
    admin.headers["X-CSRF-Token"] = csrf
    assert "zed" not in [a["username"] for a in admin.get("/api/staff/accounts").json()["accounts"]]
    # The page itself is served to anyone; it asks /api/me and shows itself to admins only.
    page = httpx.get(f"{server.base}/staff")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]


def test_accounts_over_rest_never_show_a_hash_and_keep_the_last_admin(
    server: Any, settings: Any, admin: httpx.Client
) -> None:
    answers: list[str] = []

    def ok(r: httpx.Response) -> Any:
        answers.append(r.text)
        assert r.status_code == 200, r.text
        return r.json()

    added = ok(admin.post("/api/staff/accounts", json={"username": "anna", "role": "moderator"}))
    password = added["password"]
    assert password and added["account"]["username"] == "anna"
    anna = login(server.base, "anna", password)
    assert anna.get("/api/me").json()["role"] == "moderator"

    taken = admin.post("/api/staff/accounts", json={"username": "ANNA", "role": "host"})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "user.exists"
    short = admin.post("/api/staff/accounts", json={"username": "bob", "role": "host", "password": "short"})
    assert short.status_code == 400 and short.json()["error"]["code"] == "password.too_short"
    given = ok(admin.post("/api/staff/accounts", json={"username": "bob", "role": "host", "password": "bobs-password"}))
    assert given["password"] is None

    listed = ok(admin.get("/api/staff/accounts"))["accounts"]
    by_name = {a["username"]: a for a in listed}
    assert by_name["anna"]["sessions"] == 1 and by_name["boss"]["role"] == "admin"

    reset = ok(admin.post(f"/api/staff/accounts/{by_name['anna']['id']}/password"))
    assert reset["password"] and reset["password"] != password
    assert anna.get("/api/me").status_code == 401  # the reset ended anna's session
    anna.close()

    me = by_name["boss"]["id"]
    own = admin.post(f"/api/staff/accounts/{me}/disabled", json={"disabled": True})
    assert own.status_code == 400 and own.json()["error"]["code"] == "staff.self"
    bad = admin.post(f"/api/staff/accounts/{me}/disabled", json={"disabled": "yes"})
    assert bad.status_code == 400
    unknown = admin.post("/api/staff/accounts/999999/disabled", json={"disabled": True})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "user.unknown"

    # A second admin, then the first tries to disable it and it tries to disable the first.
    second = ok(admin.post("/api/staff/accounts", json={"username": "second", "role": "admin"}))
    other = login(server.base, "second", second["password"])
    assert ok(other.post(f"/api/staff/accounts/{me}/disabled", json={"disabled": True}))["disabled"]
    assert admin.get("/api/me").status_code == 401  # boss's session ended with the account
    last = other.post(f"/api/staff/accounts/{second['account']['id']}/disabled", json={"disabled": True})
    assert last.status_code == 400 and last.json()["error"]["code"] == "staff.self"
    assert ok(other.post(f"/api/staff/accounts/{me}/disabled", json={"disabled": False}))["disabled"] is False
    answers.append(other.get("/api/moderation/audit").text)
    audit = [a["action"] for a in other.get("/api/moderation/audit").json()["actions"]]
    other.close()
    assert audit[:3] == ["staff.enable", "staff.disable", "staff.add"]
    assert not any("$argon2" in text or "password_hash" in text for text in answers)


def test_two_admins_disabling_each_other_at_once_leave_one_admin(server: Any, ctx: Any, admin: httpx.Client) -> None:
    """The only way to reach the last admin over REST: each of the last two disables the
    other at the same moment. One wins; the other is refused (its session ended, or
    staff.last_admin), never both."""
    accounts.add_user(ctx, "second", "second-password", "admin")
    ids = {a["username"]: a["id"] for a in admin.get("/api/staff/accounts").json()["accounts"]}
    other = login(server.base, "second", "second-password")
    try:
        barrier = threading.Barrier(2)
        codes: dict[str, int] = {}

        def disable(name: str, client: httpx.Client, target: int) -> None:
            barrier.wait()
            codes[name] = client.post(f"/api/staff/accounts/{target}/disabled", json={"disabled": True}).status_code

        threads = [
            threading.Thread(target=disable, args=("boss", admin, ids["second"])),
            threading.Thread(target=disable, args=("second", other, ids["boss"])),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.close()
    assert sorted(codes.values()) in ([200, 401], [200, 409]), codes
    with ctx.read() as db:
        admins = [u for u in db.exec(select(User).where(User.role == "admin"))]
    assert len([u for u in admins if not u.disabled]) == 1


def test_disabling_a_moderator_closes_its_open_console(
    server: Any, settings: Any, moderator: httpx.Client, admin: httpx.Client
) -> None:
    mod1 = {a["username"]: a["id"] for a in admin.get("/api/staff/accounts").json()["accounts"]}["mod1"]
    with moderator_ws(server, moderator) as console:
        assert console.request("hello")["ok"]
        assert admin.post(f"/api/staff/accounts/{mod1}/disabled", json={"disabled": True}).status_code == 200
        assert _closes_with(console, 3 * settings.access_recheck_seconds + 5 * SECOND) == 4401
    assert moderator.get("/api/me").status_code == 401


def test_a_host_link_revoked_alone_closes_its_display_and_not_the_others(
    server: Any, settings: Any, sample: Any, admin: httpx.Client
) -> None:
    moscow = sample["studios"]["moscow"].id
    listing = admin.get("/api/staff/host-links").json()
    assert moscow in [s["id"] for s in listing["studios"]] and listing["links"] == []
    until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    one = admin.post("/api/staff/host-links", json={"studio_id": moscow, "label": "Stage left", "until": until}).json()
    two = admin.post("/api/staff/host-links", json={"studio_id": moscow, "hours": 12}).json()
    assert one["label"] == "Stage left" and one["url"] != two["url"]
    token_one, token_two = one["url"].rsplit("/", 1)[1], two["url"].rsplit("/", 1)[1]
    assert httpx.get(one["url"]).status_code == 200
    for body, code in (
        ({"studio_id": moscow}, "host_link.expiry_required"),
        ({"studio_id": moscow, "hours": -1}, "host_link.hours_invalid"),
        ({"studio_id": moscow, "until": "2001-01-01T00:00:00Z"}, "host_link.until_past"),
    ):
        r = admin.post("/api/staff/host-links", json=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == code
    assert admin.post("/api/staff/host-links", json={"studio_id": 999999, "hours": 1}).status_code == 404

    with (
        ws_client(f"{server.ws_base}/ws/host?token={token_one}") as first,
        ws_client(f"{server.ws_base}/ws/host?token={token_two}") as second,
    ):
        assert first.request("hello")["ok"] and second.request("hello")["ok"]
        revoked = admin.post(f"/api/staff/host-links/{one['id']}/revoke")
        assert revoked.status_code == 200 and revoked.json()["state"] == "revoked" and revoked.json()["url"] is None
        refused = first.request("host.next")  # acting is refused at once, before the socket closes
        assert not refused["ok"] and refused["error"]["code"] == "host.link_revoked"
        assert _closes_with(first, 3 * settings.access_recheck_seconds + 5 * SECOND) == 4401
        second.drain(settings.access_recheck_seconds + 0.5 * SECOND)
        assert second.request("snapshot")["ok"]  # the other link of the studio still works
    assert httpx.get(one["url"]).status_code == 404
    assert closed_with(f"{server.ws_base}/ws/host?token={token_one}") == (4401, [])
    assert httpx.get(two["url"]).status_code == 200
    states = {x["id"]: x["state"] for x in admin.get("/api/staff/host-links").json()["links"]}
    assert states == {one["id"]: "revoked", two["id"]: "open"}
    assert admin.post("/api/staff/host-links/999999/revoke").status_code == 404


def test_a_host_link_expires_and_its_open_display_closes(
    server: Any, settings: Any, sample: Any, admin: httpx.Client
) -> None:
    moscow = sample["studios"]["moscow"].id
    soon = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    link = admin.post("/api/staff/host-links", json={"studio_id": moscow, "until": soon}).json()
    token = link["url"].rsplit("/", 1)[1]
    with ws_client(f"{server.ws_base}/ws/host?token={token}") as host:
        assert host.request("hello")["ok"]
        assert _closes_with(host, 3 * SECOND + 3 * settings.access_recheck_seconds + 5 * SECOND) == 4401
    assert httpx.get(link["url"]).status_code == 404
    assert [x["state"] for x in admin.get("/api/staff/host-links").json()["links"]] == ["expired"]
