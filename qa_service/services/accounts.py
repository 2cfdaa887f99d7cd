"""Staff accounts and their server-side sessions.

A username is one account whatever its case or width ("Anna", "ANNA", "Ａｎｎａ":
security.username_key, unique in the database), and a new one is made of ASCII
letters, digits, '.', '-' and '_' only, so a look-alike cannot sit beside it.
Disabling an account or changing its password ends every session it has: the
cookies stop working at once and open sockets close with 4401 at the hub's next
access check. So does a session older than ``QA_SESSION_MAX_AGE``, open socket or not."""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..db.models import StaffSession, User, utcnow
from ..domain.errors import DomainError, NotFound
from ..security import ROLES, hash_password, username_key, valid_username, verify_password
from .context import Context

MAX_LOGIN_FIELD = 1000  # characters; longer usernames or passwords are not worth an argon2 run


def _check_name(username: str) -> None:
    if not valid_username(username):
        raise DomainError("user.name_invalid", "a username is 1-64 ASCII letters, digits, '.', '-' or '_' (any case)")


def _find(db: Session, username: str) -> User | None:
    return db.exec(select(User).where(User.username_key == username_key(username))).first()


def _existing(db: Session, username: str) -> User:
    user = _find(db, username)
    if user is None:
        raise NotFound("user.unknown", f"there is no user {username!r}")
    return user


def add_user(ctx: Context, username: str, password: str, role: str) -> User:
    """Create an account, or update the one of that (normalised) name: its password
    and role change, it is enabled, and its sessions end."""
    if role not in ROLES:
        raise DomainError("user.role_invalid", f"role must be one of {', '.join(ROLES)}")
    hashed = hash_password(password)
    with ctx.transaction() as (db, _):
        user = _find(db, username)
        if user is None:
            _check_name(username)
            # Shown as given, in NFKC: a fullwidth name is stored in its ASCII form.
            name = unicodedata.normalize("NFKC", username)
            user = User(username=name, username_key=username_key(username), password_hash=hashed, role=role)
        else:
            user.password_hash, user.role, user.disabled = hashed, role, False
            _end_sessions(db, user)
        db.add(user)
        db.flush()
        return user


def set_disabled(ctx: Context, username: str, disabled: bool) -> User:
    """Disable (every session ends) or enable an account. Ended sessions stay ended."""
    with ctx.transaction() as (db, _):
        user = _existing(db, username)
        user.disabled = disabled
        db.add(user)
        if disabled:
            _end_sessions(db, user)
        db.flush()
        return user


def set_password(ctx: Context, username: str, password: str) -> User:
    """A new password; every session of the account ends."""
    hashed = hash_password(password)
    with ctx.transaction() as (db, _):
        user = _existing(db, username)
        user.password_hash = hashed
        db.add(user)
        _end_sessions(db, user)
        db.flush()
        return user


def _end_sessions(db: Session, user: User) -> None:
    if user.id is None:
        return
    db.exec(  # type: ignore[call-overload]
        sa.update(StaffSession)
        .where(col(StaffSession.user_id) == user.id, col(StaffSession.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


def limit_key(username: object) -> str:
    """What login attempts on one account are counted under: its normalised name,
    hashed (short and opaque, whatever was typed). Unknown names count too, so a
    refusal says nothing about whether the account exists."""
    name = username if isinstance(username, str) else ""
    return hashlib.sha256(username_key(name[:MAX_LOGIN_FIELD]).encode()).hexdigest()[:32]


def authenticate(ctx: Context, username: object, password: object) -> User | None:
    """The user, if the password is theirs and the account enabled. Whatever the
    answer, one argon2 verification runs (see security.verify_password): run this
    where argon2 work is bounded (the hub's login pool)."""
    if not isinstance(username, str) or not isinstance(password, str):
        return None
    if len(username) > MAX_LOGIN_FIELD or len(password) > MAX_LOGIN_FIELD:
        return None
    with ctx.read() as db:
        user = _find(db, username)  # accounts named before the rules log in too
    if user is not None and user.disabled:
        user = None
    if not verify_password(user.password_hash if user else None, password):
        return None
    return user


def start_session(ctx: Context, user_id: int) -> str:
    """A new server-side session for a login; its id goes into the signed cookie."""
    sid = secrets.token_hex(24)
    with ctx.transaction() as (db, _):
        db.add(StaffSession(id=sid, user_id=user_id))
    return sid


def end_session(ctx: Context, session_id: object) -> None:
    """Logout: the session stops working everywhere (requests and open sockets)."""
    if not isinstance(session_id, str):
        return
    with ctx.transaction() as (db, _):
        row = db.get(StaffSession, session_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = utcnow()
            db.add(row)


def session_user(ctx: Context, user_id: object, session_id: object) -> User | None:
    """The user of a live session: the session not ended nor older than
    ``QA_SESSION_MAX_AGE`` (its cookie has expired by then, and a socket opened with
    it closes at the next access check), the user not disabled."""
    if not isinstance(user_id, int) or not isinstance(session_id, str):
        return None
    oldest = utcnow() - timedelta(seconds=ctx.settings.session_max_age)
    with ctx.read() as db:
        row = db.get(StaffSession, session_id)
        if row is None or row.revoked_at is not None or row.user_id != user_id or row.created_at < oldest:
            return None
        user = db.get(User, user_id)
    return None if user is None or user.disabled else user
