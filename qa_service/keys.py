"""The signing key and the data directory's permissions.

Without an explicit key a development or demo install generates a random one
once, into ``data_dir/secret_key`` (0600, directory 0700): it is never the
public placeholder, so nobody can forge a cookie, host link or viewer token.
Production takes QA_SECRET_KEY or QA_SECRET_KEY_FILE (the same on every hub).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path

from .settings import Settings, check_secret_strength

KEY_FILE = "secret_key"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700; tighten it if this user owns it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def signing_key(settings: Settings) -> str:
    if settings.secret_key is not None:
        return settings.secret_key
    if settings.secret_key_file is not None:
        return _read_key_file(settings.secret_key_file.resolve(), settings.environment == "production")
    return _generated_key(settings.data_dir.resolve())


@lru_cache(maxsize=8)
def _read_key_file(path: Path, production: bool) -> str:
    key = path.read_text(encoding="utf-8").strip()
    if production:
        check_secret_strength(key)
    if not key:
        raise ValueError(f"{path} is empty")
    return key


@lru_cache(maxsize=8)
def _generated_key(data_dir: Path) -> str:
    path = ensure_private_dir(data_dir) / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
        if len(key) < 32:
            raise ValueError(f"{path} holds no usable key; delete it to generate a new one") from None
        return key
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return key


def address_hash(key: str, address: str) -> str:
    """A keyed hash of a client address: lets a ban match an address without storing it."""
    return hmac.new(key.encode(), b"addr:" + address.encode(), hashlib.sha256).hexdigest()[:32]


def secure_data_dir(settings: Settings) -> None:
    """The data directory 0700; a SQLite database file (and its -wal/-shm, which
    SQLite creates with the database file's mode) 0600, created so if missing."""
    ensure_private_dir(settings.data_dir)
    url = settings.effective_database_url
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        return
    path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
    if not path.exists():
        # Created empty with 0600 (SQLite fills it). Never open an existing database
        # here: closing any descriptor of a SQLite file drops this process's locks on it.
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
    for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if f.exists() and f.stat().st_uid == os.getuid() and f.stat().st_mode & 0o077:
            f.chmod(0o600)
