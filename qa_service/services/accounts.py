"""Staff accounts."""

from __future__ import annotations

import secrets

from sqlmodel import select

from ..db.models import StaffSession, User, utcnow
from ..domain.errors import DomainError
from ..security import ROLES, hash_password, username_key, verify_password
from .context import Context


def add_user(ctx: Context, username: str, password: str, role: str) -> User:
    if role not in ROLES:
        raise DomainError("user.role_invalid", f"role must be one of {', '.join(ROLES)}")
    if not username or len(username) > 64 or not username.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise DomainError("user.name_invalid", "a username is 1-64 letters, digits, '.', '-' or '_'")
    with ctx.transaction() as (db, _):
        user = db.exec(select(User).where(User.username_key == username_key(username))).first()
        if user is None:
            user = User(
                username=username, username_key=username_key(username), password_hash=hash_password(password), role=role
            )
        else:
            user.password_hash, user.role, user.disabled = hash_password(password), role, False
        db.add(user)
        db.flush()
        return user


def authenticate(ctx: Context, username: object, password: object) -> User | None:
    if not isinstance(username, str) or not isinstance(password, str) or len(password) > 1000:
        return None
    with ctx.read() as db:
        user = db.exec(select(User).where(User.username == username)).first()
    if user is None or user.disabled or not verify_password(user.password_hash, password):
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
    """The user of a live session: the session not ended, the user not disabled."""
    if not isinstance(user_id, int) or not isinstance(session_id, str):
        return None
    with ctx.read() as db:
        row = db.get(StaffSession, session_id)
        if row is None or row.revoked_at is not None or row.user_id != user_id:
            return None
        user = db.get(User, user_id)
    return None if user is None or user.disabled else user
