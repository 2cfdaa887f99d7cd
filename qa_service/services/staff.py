"""Staff management for admins (the /staff page): accounts and host display links.

Accounts: list them (never a password hash), add one with a given or generated
password, reset a password, disable or enable. A generated password is returned
once, by the call that made it, and stored only as its argon2 hash. Resetting a
password or disabling an account ends its sessions in the same transaction (open
consoles close 4401 at the hub's next access check). An admin cannot disable
themselves, and the last enabled admin cannot be disabled: someone must be left
who can let people back in.

Host links: each link issued is a HostLink row that its signed token names, so one
link is revoked alone; a link stops opening at its expiry (in the token and in the
row), when revoked, or when its studio's ``host_token_version`` is bumped
(``qa-service host-links --revoke``). Tokens are deterministic, so an open link's
URL can be shown again to an admin without storing it.

Every change goes to the audit log (ModerationAction, no question) under the event
this deployment runs, ``actor`` the admin's name."""

from __future__ import annotations

import secrets
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from ..db.models import HostLink, ModerationAction, StaffSession, Studio, User, utcnow
from ..domain.errors import Conflict, DomainError, NotFound
from ..domain.validation import clean_text
from ..security import ROLES, Signer, hash_password, username_key, valid_username
from .accounts import _end_sessions as end_sessions
from .context import Context
from .views import iso

GENERATED_PASSWORD_BYTES = 12  # token_urlsafe: 16 characters, 96 bits
MIN_PASSWORD = 8
MAX_PASSWORD = 1000  # as a login accepts (accounts.MAX_LOGIN_FIELD)
MAX_LABEL = 100
MAX_LINK_HOURS = 24 * 366  # a host link lives at most a year


# ── accounts ────────────────────────────────────────────────────────────────
def account_view(user: User, sessions: int = 0) -> dict[str, Any]:
    """What an admin sees of an account: never its password hash."""
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "disabled": user.disabled,
        "created_at": iso(user.created_at),
        "sessions": sessions,
    }


def list_accounts(ctx: Context) -> list[dict[str, Any]]:
    oldest = utcnow() - timedelta(seconds=ctx.settings.session_max_age)
    with ctx.read() as db:
        users = list(db.exec(select(User).order_by(col(User.role), col(User.username_key))))
        ids = [u.id for u in users if u.id is not None]
        rows = db.exec(
            select(StaffSession.user_id, func.count())
            .where(
                col(StaffSession.user_id).in_(ids),
                col(StaffSession.revoked_at).is_(None),
                col(StaffSession.created_at) >= oldest,
            )
            .group_by(col(StaffSession.user_id))
        ).all()
        open_sessions = {uid: n for uid, n in rows}
        return [account_view(u, open_sessions.get(u.id or 0, 0)) for u in users]


def _password(given: object) -> tuple[str, str | None]:
    """(the password to hash, the one to show once): a given one is never echoed."""
    if given is None:
        generated = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
        return generated, generated
    if not isinstance(given, str):
        raise DomainError("password.invalid", "password must be a string")
    if len(given) < MIN_PASSWORD:
        raise DomainError("password.too_short", f"a password needs at least {MIN_PASSWORD} characters")
    if len(given) > MAX_PASSWORD:
        raise DomainError("password.too_long", f"a password has at most {MAX_PASSWORD} characters")
    return given, None


def _audit(db: Session, event_id: int, actor: str, action: str, before: Any, after: Any) -> None:
    db.add(ModerationAction(event_id=event_id, actor=actor, action=action, before=before, after=after))


def _user(db: Session, user_id: int, *, lock: bool = False) -> User:
    stmt = select(User).where(User.id == user_id)
    user = db.exec(stmt.with_for_update() if lock else stmt).first()
    if user is None:
        raise NotFound("user.unknown", f"there is no account {user_id}")
    return user


def _brief(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "role": user.role, "disabled": user.disabled}


def add_account(
    ctx: Context, event_id: int, actor: str, username: object, role: object, password: object = None
) -> tuple[dict[str, Any], str | None]:
    """A new account; (its view, the generated password or None). An existing name
    (in any case or width) is refused: changing someone's password is a reset."""
    if not isinstance(username, str) or not valid_username(username):
        raise DomainError("user.name_invalid", "a username is 1-64 ASCII letters, digits, '.', '-' or '_' (any case)")
    if role not in ROLES:
        raise DomainError("user.role_invalid", f"role must be one of {', '.join(ROLES)}")
    plain, shown = _password(password)
    hashed = hash_password(plain)
    key = username_key(username)
    try:
        with ctx.transaction() as (db, _):
            if db.exec(select(User.id).where(User.username_key == key)).first() is not None:
                raise Conflict("user.exists", f"there is already an account {username!r}")
            user = User(
                username=unicodedata.normalize("NFKC", username), username_key=key, password_hash=hashed, role=role
            )
            db.add(user)
            db.flush()
            _audit(db, event_id, actor, "staff.add", None, _brief(user))
            view = account_view(user)
    except sa.exc.IntegrityError:  # added by someone else at the same moment
        raise Conflict("user.exists", f"there is already an account {username!r}") from None
    return view, shown


def reset_password(
    ctx: Context, event_id: int, actor: str, user_id: int, password: object = None
) -> tuple[dict[str, Any], str | None]:
    """A new password (given, or generated and returned once); every session ends."""
    plain, shown = _password(password)
    hashed = hash_password(plain)
    with ctx.transaction() as (db, _):
        user = _user(db, user_id, lock=True)
        user.password_hash = hashed
        db.add(user)
        end_sessions(db, user)
        _audit(db, event_id, actor, "staff.password", None, {"id": user.id, "username": user.username})
        db.flush()
        return account_view(user), shown


def set_disabled(
    ctx: Context, event_id: int, actor_id: int, actor: str, user_id: int, disabled: bool
) -> dict[str, Any]:
    """Disable (every session ends at once) or enable an account."""
    if disabled and user_id == actor_id:
        raise DomainError("staff.self", "you cannot disable your own account")
    with ctx.transaction() as (db, _):
        # Every enabled admin's row locked, in one order: two admins disabling each
        # other at once take turns, and the second finds the last admin.
        admins = db.exec(
            select(User)
            .where(User.role == "admin", col(User.disabled).is_(False))
            .order_by(col(User.id))
            .with_for_update()
        ).all()
        user = _user(db, user_id, lock=True)
        if user.disabled == disabled:
            return account_view(user)
        if disabled and user.role == "admin" and all(a.id == user.id for a in admins):
            raise Conflict("staff.last_admin", "this is the last enabled admin: enable or add another admin first")
        before = _brief(user)
        user.disabled = disabled
        db.add(user)
        if disabled:
            end_sessions(db, user)
        _audit(db, event_id, actor, "staff.disable" if disabled else "staff.enable", before, _brief(user))
        db.flush()
        return account_view(user)


# ── host links ──────────────────────────────────────────────────────────────
def link_open(db: Session, link_id: int, studio_id: int, now: datetime | None = None) -> bool:
    """Whether a link row lets its token in: the studio's, not revoked, not expired.
    (The caller has checked the token's signature and the studio's token version.)"""
    link = db.get(HostLink, link_id)
    if link is None or link.studio_id != studio_id or link.revoked_at is not None:
        return False
    return link.expires_at is None or link.expires_at > (now or utcnow())


def link_state(link: HostLink, studio: Studio, now: datetime) -> str:
    if link.revoked_at is not None or link.studio_version != studio.host_token_version:
        return "revoked"
    if link.expires_at is not None and link.expires_at <= now:
        return "expired"
    return "open"


def link_url(signer: Signer, base_url: str, link: HostLink) -> str:
    assert link.id is not None
    expires = link.expires_at.replace(tzinfo=UTC) if link.expires_at else None
    return f"{base_url}/host/{signer.host_token(link.studio_id, link.studio_version, expires, link_id=link.id)}"


def link_view(link: HostLink, studio: Studio, signer: Signer, base_url: str, now: datetime) -> dict[str, Any]:
    """A link as admins see it; its URL only while it opens."""
    state = link_state(link, studio, now)
    return {
        "id": link.id,
        "studio_id": link.studio_id,
        "label": link.label,
        "created_by": link.created_by,
        "created_at": iso(link.created_at),
        "expires_at": iso(link.expires_at),
        "revoked_at": iso(link.revoked_at),
        "state": state,
        "url": link_url(signer, base_url, link) if state == "open" else None,
    }


def studio_view(studio: Studio) -> dict[str, Any]:
    return {"id": studio.id, "slug": studio.slug, "name": studio.name, "city": studio.city}


def list_host_links(ctx: Context, event_id: int, signer: Signer, base_url: str) -> dict[str, Any]:
    """The event's studios and every link issued for them, newest first."""
    now = utcnow()
    with ctx.read() as db:
        studios = {s.id: s for s in db.exec(select(Studio).where(Studio.event_id == event_id).order_by(col(Studio.id)))}
        links = db.exec(
            select(HostLink).where(col(HostLink.studio_id).in_(list(studios))).order_by(col(HostLink.id).desc())
        ).all()
        return {
            "studios": [studio_view(s) for s in studios.values()],
            "links": [link_view(link, studios[link.studio_id], signer, base_url, now) for link in links],
        }


def expiry(hours: object = None, until: object = None, now: datetime | None = None) -> datetime:
    """When a new link stops opening (naive UTC): in ``hours``, or at ``until`` (an
    ISO 8601 time with its offset, or UTC when it has none). Exactly one is needed."""
    now = now or utcnow()
    if (hours is None) == (until is None):
        raise DomainError("host_link.expiry_required", "give either hours or until: when the link stops opening")
    if hours is not None:
        if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= MAX_LINK_HOURS:
            raise DomainError("host_link.hours_invalid", f"hours must be a number above 0 and at most {MAX_LINK_HOURS}")
        return now + timedelta(hours=hours)
    if not isinstance(until, str) or len(until) > 40:
        raise DomainError("host_link.until_invalid", "until must be an ISO 8601 date and time")
    try:
        at = datetime.fromisoformat(until)
    except ValueError:
        raise DomainError("host_link.until_invalid", "until must be an ISO 8601 date and time") from None
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    if at <= now:
        raise DomainError("host_link.until_past", "until is in the past")
    if at > now + timedelta(hours=MAX_LINK_HOURS):
        raise DomainError("host_link.until_invalid", "a host link lives at most a year")
    return at


def issue_host_link(
    ctx: Context,
    event_id: int,
    actor: str,
    signer: Signer,
    base_url: str,
    studio_id: int,
    expires_at: datetime | None,
    label: object = None,
) -> dict[str, Any]:
    """A new link to a studio's host display (``expires_at`` naive UTC; None: never)."""
    text = clean_text(label, field="label", max_chars=MAX_LABEL, required=False, single_line=True) or ""
    with ctx.transaction() as (db, _):
        studio = db.exec(select(Studio).where(Studio.id == studio_id, Studio.event_id == event_id)).first()
        if studio is None or studio.id is None:
            raise NotFound("studio.unknown", f"there is no studio {studio_id}")
        link = HostLink(
            studio_id=studio.id,
            studio_version=studio.host_token_version,
            label=text,
            created_by=actor,
            expires_at=expires_at.replace(microsecond=0) if expires_at else None,
        )
        db.add(link)
        db.flush()
        after = {"link": link.id, "studio": studio.slug, "label": text, "expires_at": iso(link.expires_at)}
        _audit(db, event_id, actor, "host_link.issue", None, after)
        return link_view(link, studio, signer, base_url, utcnow())


def issue_for_studios(
    ctx: Context, actor: str, signer: Signer, base_url: str, expires_at: datetime | None
) -> list[tuple[str, str]]:
    """One new link per studio of every event, (slug, url): ``qa-service host-links``."""
    out = []
    with ctx.transaction() as (db, _):
        for studio in db.exec(select(Studio).order_by(col(Studio.id))):
            assert studio.id is not None
            link = HostLink(
                studio_id=studio.id,
                studio_version=studio.host_token_version,
                created_by=actor,
                expires_at=expires_at.replace(microsecond=0) if expires_at else None,
            )
            db.add(link)
            db.flush()
            out.append((studio.slug, link_url(signer, base_url, link)))
    return out


def revoke_host_link(
    ctx: Context, event_id: int, actor: str, signer: Signer, base_url: str, link_id: int
) -> dict[str, Any]:
    """Revoke one link: it stops opening, and a display open with it closes (4401)
    at the hub's next access check. Its studio's other links keep working."""
    with ctx.transaction() as (db, _):
        row = db.exec(
            select(HostLink, Studio)
            .join(Studio, col(Studio.id) == col(HostLink.studio_id))
            .where(HostLink.id == link_id, Studio.event_id == event_id)
            .with_for_update()
        ).first()
        if row is None:
            raise NotFound("host_link.unknown", f"there is no host link {link_id}")
        link, studio = row
        if link.revoked_at is None:
            link.revoked_at = utcnow()
            db.add(link)
            after = {"link": link.id, "studio": studio.slug, "label": link.label}
            _audit(db, event_id, actor, "host_link.revoke", None, after)
            db.flush()
        return link_view(link, studio, signer, base_url, utcnow())
