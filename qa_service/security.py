"""Passwords (argon2), signed host links and viewer tokens, CSRF tokens."""

from __future__ import annotations

import hmac
import secrets
import unicodedata
import uuid

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeSerializer

ROLES = ("moderator", "host", "admin")
_hasher = PasswordHasher()


def username_key(username: str) -> str:
    """The form two usernames are compared in: NFKC, case-folded ("Admin", "ADMIN"
    and fullwidth "Ａｄｍｉｎ" are one name). Unique in the database."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class Signer:
    """Signed, revocable tokens derived from the one secret key."""

    def __init__(self, secret_key: str) -> None:
        self._host = URLSafeSerializer(secret_key, salt="qa.host-link")
        self._viewer = URLSafeSerializer(secret_key, salt="qa.viewer")

    def host_token(self, studio_id: int, token_version: int) -> str:
        return self._host.dumps({"s": studio_id, "v": token_version})

    def read_host_token(self, token: str) -> tuple[int, int] | None:
        """(studio_id, token_version), or None if forged. The caller checks the
        version against the studio's current one (revocation)."""
        try:
            data = self._host.loads(token)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("s"), int) or not isinstance(data.get("v"), int):
            return None
        return data["s"], data["v"]

    def new_viewer(self) -> tuple[str, str]:
        viewer_id = uuid.uuid4().hex
        return viewer_id, self._viewer.dumps(viewer_id)

    def read_viewer_token(self, token: object) -> str | None:
        if not isinstance(token, str) or len(token) > 200:
            return None
        try:
            value = self._viewer.loads(token)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: object, given: object) -> bool:
    return isinstance(expected, str) and isinstance(given, str) and hmac.compare_digest(expected, given)
