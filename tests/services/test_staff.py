"""Staff management (services/staff.py) on SQLite and PostgreSQL: accounts without
hashes, passwords shown once, sessions ended, the last admin kept, host links issued,
revoked one by one and expiring, every change audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from qa_service.db.models import HostLink, ModerationAction, Studio, User
from qa_service.domain.errors import Conflict, DomainError, NotFound
from qa_service.security import Signer, verify_password
from qa_service.services import accounts, staff
from qa_service.services.context import Context

pytestmark = pytest.mark.integration

BASE = "http://qa.test"


def _audit(ctx: Context, event_id: int) -> list[tuple[str, str, Any]]:
    with ctx.read() as db:
        rows = db.exec(
            select(ModerationAction).where(ModerationAction.event_id == event_id).order_by(ModerationAction.id)
        )
        return [(r.actor, r.action, r.after) for r in rows if r.question_id is None and r.segment_id is None]


def _uid(ctx: Context, name: str) -> int:
    with ctx.read() as db:
        user = db.exec(select(User).where(User.username == name)).one()
    assert user.id is not None
    return user.id


def _session(ctx: Context, name: str) -> tuple[int, str]:
    uid = _uid(ctx, name)
    return uid, accounts.start_session(ctx, uid)


def test_accounts_are_listed_without_hashes_and_added_with_a_password_shown_once(ctx: Context, event_id: int) -> None:
    accounts.add_user(ctx, "boss", "boss-password", "admin")
    view, password = staff.add_account(ctx, event_id, "boss", "Anna", "moderator")
    assert password is not None and len(password) >= 16
    assert view["username"] == "Anna" and view["role"] == "moderator" and not view["disabled"]
    assert accounts.authenticate(ctx, "anna", password) is not None

    given, shown = staff.add_account(ctx, event_id, "boss", "studio-cairo", "host", "a-given-password")
    assert shown is None and given["role"] == "host"
    assert accounts.authenticate(ctx, "studio-cairo", "a-given-password") is not None

    listed = staff.list_accounts(ctx)
    assert {a["username"] for a in listed} == {"mod1", "mod2", "boss", "Anna", "studio-cairo"}
    for account in listed:
        assert set(account) == {"id", "username", "role", "disabled", "created_at", "sessions"}
        assert "argon2" not in repr(account)

    with pytest.raises(Conflict) as taken:
        staff.add_account(ctx, event_id, "boss", "ANNA", "admin")  # any case: one name
    assert taken.value.code == "user.exists"
    for bad, code in (
        (("аnna", "moderator", None), "user.name_invalid"),  # Cyrillic а
        (("zed", "owner", None), "user.role_invalid"),
        (("zed", "moderator", "short"), "password.too_short"),
    ):
        with pytest.raises(DomainError) as refused:
            staff.add_account(ctx, event_id, "boss", *bad)
        assert refused.value.code == code
    assert [(a, act, after["username"]) for a, act, after in _audit(ctx, event_id)] == [
        ("boss", "staff.add", "Anna"),
        ("boss", "staff.add", "studio-cairo"),
    ]


def test_reset_password_ends_every_session_and_shows_the_new_one_once(ctx: Context, event_id: int) -> None:
    uid, sid = _session(ctx, "mod1")
    assert accounts.session_user(ctx, uid, sid) is not None
    view, password = staff.reset_password(ctx, event_id, "boss", uid)
    assert view["username"] == "mod1" and password
    assert accounts.session_user(ctx, uid, sid) is None
    assert accounts.authenticate(ctx, "mod1", password) is not None
    _, none = staff.reset_password(ctx, event_id, "boss", uid, "chosen-by-admin")
    assert none is None
    with ctx.read() as db:
        assert verify_password(db.get(User, uid).password_hash, "chosen-by-admin")
    with pytest.raises(NotFound):
        staff.reset_password(ctx, event_id, "boss", 999_999)
    assert [act for _, act, _ in _audit(ctx, event_id)] == ["staff.password", "staff.password"]
    assert all(set(after) == {"id", "username"} for _, _, after in _audit(ctx, event_id))  # no password in it


def test_disabling_ends_sessions_and_enabling_does_not_revive_them(ctx: Context, event_id: int) -> None:
    accounts.add_user(ctx, "boss", "boss-password", "admin")
    boss = _uid(ctx, "boss")
    uid, sid = _session(ctx, "mod1")
    assert {a["username"]: a["sessions"] for a in staff.list_accounts(ctx)}["mod1"] == 1
    view = staff.set_disabled(ctx, event_id, boss, "boss", uid, True)
    assert view["disabled"] and view["sessions"] == 0
    assert accounts.session_user(ctx, uid, sid) is None
    assert accounts.authenticate(ctx, "mod1", "moderator-password") is None
    assert staff.set_disabled(ctx, event_id, boss, "boss", uid, True)["disabled"]  # again: no change, no audit
    staff.set_disabled(ctx, event_id, boss, "boss", uid, False)
    assert accounts.session_user(ctx, uid, sid) is None
    assert accounts.authenticate(ctx, "mod1", "moderator-password") is not None
    audit = _audit(ctx, event_id)
    assert [(act, after["disabled"]) for _, act, after in audit] == [("staff.disable", True), ("staff.enable", False)]


def test_an_admin_cannot_disable_themselves_nor_the_last_admin(ctx: Context, event_id: int) -> None:
    accounts.add_user(ctx, "boss", "boss-password", "admin")
    boss = _uid(ctx, "boss")
    with pytest.raises(DomainError) as own:
        staff.set_disabled(ctx, event_id, boss, "boss", boss, True)
    assert own.value.code == "staff.self"
    # Another admin (a CLI session, say) cannot disable the last one either.
    mod = _uid(ctx, "mod1")
    with pytest.raises(Conflict) as last:
        staff.set_disabled(ctx, event_id, mod, "mod1", boss, True)
    assert last.value.code == "staff.last_admin"
    staff.add_account(ctx, event_id, "boss", "second", "admin", "second-password")
    second = _uid(ctx, "second")
    assert staff.set_disabled(ctx, event_id, boss, "boss", second, True)["disabled"]
    with pytest.raises(Conflict):
        staff.set_disabled(ctx, event_id, second, "second", boss, True)
    with ctx.read() as db:
        assert not db.get(User, boss).disabled


def test_host_links_are_issued_listed_and_revoked_one_by_one(ctx: Context, event_id: int, settings: Any) -> None:
    signer = Signer(settings.secret_key)
    with ctx.read() as db:
        moscow = db.exec(select(Studio).where(Studio.slug == "moscow")).one()
    assert moscow.id is not None
    soon = staff.expiry(hours=2)
    first = staff.issue_host_link(ctx, event_id, "boss", signer, BASE, moscow.id, soon, "  Screen A ")
    second = staff.issue_host_link(ctx, event_id, "boss", signer, BASE, moscow.id, soon, None)
    assert first["label"] == "Screen A" and first["state"] == "open" and first["url"].startswith(f"{BASE}/host/")
    claims = signer.read_host_token(first["url"].rsplit("/", 1)[1])
    assert claims is not None and claims.link_id == first["id"] and claims.studio_id == moscow.id

    revoked = staff.revoke_host_link(ctx, event_id, "boss", signer, BASE, first["id"])
    assert revoked["state"] == "revoked" and revoked["url"] is None
    with ctx.read() as db:
        assert not staff.link_open(db, first["id"], moscow.id)
        assert staff.link_open(db, second["id"], moscow.id)
        assert not staff.link_open(db, second["id"], moscow.id + 1)  # another studio's token cannot borrow it
        assert not staff.link_open(db, second["id"], moscow.id, now=soon + timedelta(seconds=1))

    listed = staff.list_host_links(ctx, event_id, signer, BASE)
    assert {s["slug"] for s in listed["studios"]} >= {"moscow"}
    assert [(x["id"], x["state"]) for x in listed["links"]] == [(second["id"], "open"), (first["id"], "revoked")]
    assert listed["links"][0]["url"] == second["url"]  # shown again, the same link

    with ctx.transaction() as (db, _):  # host-links --revoke: every link of the studio
        row = db.get(Studio, moscow.id)
        row.host_token_version += 1
        db.add(row)
    assert [x["state"] for x in staff.list_host_links(ctx, event_id, signer, BASE)["links"]] == ["revoked"] * 2

    with pytest.raises(NotFound):
        staff.revoke_host_link(ctx, event_id, "boss", signer, BASE, 999_999)
    with pytest.raises(NotFound):
        staff.issue_host_link(ctx, event_id, "boss", signer, BASE, 999_999, soon)
    actions = [(act, after["link"]) for _, act, after in _audit(ctx, event_id)]
    assert actions == [
        ("host_link.issue", first["id"]),
        ("host_link.issue", second["id"]),
        ("host_link.revoke", first["id"]),
    ]


def test_a_link_expiry_is_hours_or_a_time_never_both_nor_neither(ctx: Context, event_id: int) -> None:
    now = datetime(2030, 5, 1, 12, 0)
    assert staff.expiry(hours=1.5, now=now) == datetime(2030, 5, 1, 13, 30)
    assert staff.expiry(until="2030-05-02T09:00:00+03:00", now=now) == datetime(2030, 5, 2, 6, 0)
    assert staff.expiry(until="2030-05-02T09:00", now=now) == datetime(2030, 5, 2, 9, 0)
    for kwargs, code in (
        ({}, "host_link.expiry_required"),
        ({"hours": 1, "until": "2030-05-02T09:00"}, "host_link.expiry_required"),
        ({"hours": 0}, "host_link.hours_invalid"),
        ({"hours": True}, "host_link.hours_invalid"),
        ({"hours": 10_000}, "host_link.hours_invalid"),
        ({"until": "tomorrow"}, "host_link.until_invalid"),
        ({"until": "2030-05-01T11:00"}, "host_link.until_past"),
        ({"until": "2032-05-01T11:00"}, "host_link.until_invalid"),
    ):
        with pytest.raises(DomainError) as refused:
            staff.expiry(now=now, **kwargs)
        assert refused.value.code == code, kwargs


def test_the_host_links_command_issues_a_row_per_studio(ctx: Context, event_id: int, settings: Any) -> None:
    from qa_service.cli import host_links

    links = dict(host_links(settings, BASE, hours=3))
    with ctx.read() as db:
        rows = db.exec(select(HostLink)).all()
    assert len(rows) == len(links) and {r.created_by for r in rows} == {"cli"}
    assert all(r.expires_at is not None for r in rows)
    signer = Signer(settings.secret_key)
    claims = signer.read_host_token(links["moscow"].rsplit("/", 1)[1])
    assert claims is not None and claims.link_id in {r.id for r in rows}
    assert signer.read_host_token(links["moscow"].rsplit("/", 1)[1], now=datetime.now(UTC) + timedelta(hours=4)) is None
