"""Engine and sessions. SQLite gets WAL and a busy timeout; PostgreSQL a pool."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine
from sqlmodel import Session

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str, *, read_only: bool = False, timeout: float = 10.0) -> Engine:
    """``read_only`` (SQLite): transactions start deferred, as WAL snapshots that
    never wait for the write lock; use it only for sessions that write nothing.
    ``timeout`` (PostgreSQL): connect, statement and pool-wait limit in seconds, so a
    database that went away fails a request instead of hanging it."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa_event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
            # pysqlite's own transaction handling off: we BEGIN ourselves, below.
            dbapi_conn.isolation_level = None

        @sa_event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # type: ignore[no-untyped-def]
            # IMMEDIATE takes the write lock up front, so two read-check-write
            # transactions serialise instead of failing on a stale snapshot.
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    connect_args: dict[str, object] = {}
    if url.startswith("postgresql+psycopg://"):
        connect_args = {
            "connect_timeout": max(1, int(timeout)),
            "options": f"-c statement_timeout={int(timeout * 1000)}",
            # A peer that vanished (cut cable, black-holed route) is noticed by TCP keepalives.
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 3,
        }
    return sa.create_engine(
        url, pool_size=10, max_overflow=20, pool_pre_ping=True, pool_timeout=timeout, connect_args=connect_args
    )


def make_read_engine(url: str, write_engine: Engine, *, timeout: float = 10.0) -> Engine:
    """A second engine for read-only sessions where that helps (SQLite); else the same one."""
    return make_engine(url, read_only=True, timeout=timeout) if url.startswith("sqlite") else write_engine


def ping_database(engine: Engine) -> None:
    """Raises if the database does not answer (for /readyz)."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")


def session(engine: Engine) -> Session:
    return Session(engine, expire_on_commit=False)


def upgrade(url: str) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url)
    cfg.attributes["engine_url"] = url
    command.upgrade(cfg, "head")
