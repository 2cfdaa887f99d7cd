"""Usernames, passwords (argon2), signed host links and viewer tokens, CSRF tokens."""

from __future__ import annotations

import functools
import hmac
import re
import secrets
import unicodedata
import uuid
from datetime import UTC, datetime
from typing import NamedTuple

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeSerializer

ROLES = ("moderator", "host", "admin")
_hasher = PasswordHasher()
USERNAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def username_key(username: str) -> str:
    """The form two usernames are compared in: NFKC, case-folded ("Admin", "ADMIN"
    and fullwidth "Ａｄｍｉｎ" are one name). Unique in the database."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


def valid_username(username: str) -> bool:
    """1-64 ASCII letters, digits, '.', '-' or '_' once NFKC-normalised (so fullwidth
    "Ａｎｎａ" is "Anna", but Cyrillic "аnna" or a zero-width space is refused): a
    name cannot differ from another only by a look-alike letter, an invisible
    character or case (names are compared by :func:`username_key`)."""
    return USERNAME.fullmatch(unicodedata.normalize("NFKC", username)) is not None


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Check a password against its hash. With no hash (no such user, or a disabled
    one) a dummy hash is checked all the same, and False returned: every answer
    costs one argon2 verification, so a username cannot be told real by its timing."""
    try:
        return _hasher.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


class HostClaims(NamedTuple):
    """What a host link's token says: its studio, the studio's token version it was
    signed under, and the HostLink row it names (None: a link signed before links had rows)."""

    studio_id: int
    version: int
    link_id: int | None


class Signer:
    """Signed, revocable tokens derived from the one secret key."""

    def __init__(self, secret_key: str) -> None:
        self._host = URLSafeSerializer(secret_key, salt="qa.host-link")
        self._viewer = URLSafeSerializer(secret_key, salt="qa.viewer")

    def host_token(
        self, studio_id: int, token_version: int, expires_at: datetime | None = None, link_id: int | None = None
    ) -> str:
        """A host link's token; with ``expires_at`` (aware, or naive UTC) it stops opening then;
        with ``link_id`` it names its HostLink row (revoked alone)."""
        claims: dict[str, int] = {"s": studio_id, "v": token_version}
        if link_id is not None:
            claims["l"] = link_id
        if expires_at is not None:
            if expires_at.tzinfo is None:
                expires_at = expires_at.replace(tzinfo=UTC)
            claims["e"] = int(expires_at.timestamp())
        return self._host.dumps(claims)

    def read_host_token(self, token: str, now: datetime | None = None) -> HostClaims | None:
        """The token's claims, or None if forged or expired. The caller checks the
        version against the studio's current one and the link's row (revocation)."""
        if not token.isascii() or len(token) > 500:
            return None
        try:
            data = self._host.loads(token)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("s"), int) or not isinstance(data.get("v"), int):
            return None
        expires = data.get("e")
        if expires is not None:
            if not isinstance(expires, int) or (now or datetime.now(UTC)).timestamp() >= expires:
                return None
        link = data.get("l")
        if link is not None and not isinstance(link, int):
            return None
        return HostClaims(data["s"], data["v"], link)

    def new_viewer(self) -> tuple[str, str]:
        viewer_id = uuid.uuid4().hex
        return viewer_id, self._viewer.dumps(viewer_id)

    def read_viewer_token(self, token: object) -> str | None:
        if not isinstance(token, str) or len(token) > 200 or not token.isascii():
            return None  # signed tokens are ASCII; a lone surrogate would not even encode
        try:
            value = self._viewer.loads(token)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: object, given: object) -> bool:
    return isinstance(expected, str) and isinstance(given, str) and hmac.compare_digest(expected, given)
