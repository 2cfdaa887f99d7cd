"""Fixtures: real Redis, real SQLite and PostgreSQL, a real server per test."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from qa_service.bus.redis_bus import SyncPublisher
from qa_service.db.engine import make_engine, upgrade
from qa_service.embedded_redis import EmbeddedRedis
from qa_service.services.accounts import add_user
from qa_service.services.context import Context
from qa_service.services.event_loader import SAMPLE, load
from qa_service.settings import Settings

from .support import ThreadServer, login, start_server

POSTGRES_URL = os.environ.get("QA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MOD_PASSWORD = "moderator-password"


# ── Redis ──────────────────────────────────────────────────────────────────
@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """QA_TEST_REDIS_URL if set, else a throw-away redis-server of our own."""
    url = os.environ.get("QA_TEST_REDIS_URL")
    if url:
        redis.Redis.from_url(url).ping()
        yield url
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    yield server.start()
    server.stop()


# ── SQL ────────────────────────────────────────────────────────────────────
def _postgres_admin() -> sa.engine.Engine | None:
    engine = sa.create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as c:
            c.execute(sa.text("select 1"))
    except sa.exc.OperationalError:
        engine.dispose()
        return None
    return engine


@pytest.fixture(scope="session")
def sql_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Migrated template databases, copied per test (fast and isolated)."""
    tmp = tmp_path_factory.mktemp("sql")
    sqlite_template = tmp / "template.sqlite3"
    upgrade(f"sqlite:///{sqlite_template}")
    out: dict[str, Any] = {"sqlite": sqlite_template, "pg_admin": None, "pg_template": None}
    admin = _postgres_admin()
    created: list[str] = []
    if admin is not None:
        name = f"qa_tpl_{uuid.uuid4().hex[:8]}"
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        upgrade(_pg_url(name))
        out.update(pg_admin=admin, pg_template=name, pg_created=created)
    yield out
    if admin is not None:
        with admin.connect() as c:
            for name in created:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _pg_url(name: str) -> str:
    return POSTGRES_URL.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, sql_templates: dict[str, Any], tmp_path: Path) -> str:
    if request.param == "sqlite":
        target = tmp_path / "qa.sqlite3"
        shutil.copy(sql_templates["sqlite"], target)
        return f"sqlite:///{target}"
    admin = sql_templates["pg_admin"]
    if admin is None:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} (set QA_TEST_POSTGRES_URL)")
    name = f"qa_t_{uuid.uuid4().hex[:10]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{sql_templates["pg_template"]}"'))
    sql_templates["pg_created"].append(name)
    return _pg_url(name)


# ── settings, context, sample event ────────────────────────────────────────
@pytest.fixture
def settings_factory(tmp_path: Path, db_url: str, redis_url: str) -> Any:
    prefix = f"t{uuid.uuid4().hex[:10]}"

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = dict(
            data_dir=tmp_path / "data",
            database_url=db_url,
            redis_url=redis_url,
            redis_prefix=prefix,
            secret_key="test-secret-" + "x" * 30,
            schedule_tick_seconds=0.2,
            auto_migrate=False,
        )
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(settings_factory: Any) -> Settings:
    return settings_factory()


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    engine = make_engine(settings.effective_database_url)
    client = redis.Redis.from_url(settings.redis_url or "")
    yield Context(settings, engine, SyncPublisher(client, settings.redis_prefix, settings.history_size))
    client.close()
    engine.dispose()


@pytest.fixture
def event_id(ctx: Context) -> int:
    """The sample marathon, shifted so its first segments are live now."""
    eid = load(ctx, SAMPLE, shift_to=datetime.now(UTC) - timedelta(minutes=1))
    add_user(ctx, "mod1", MOD_PASSWORD, "moderator")
    add_user(ctx, "mod2", MOD_PASSWORD, "moderator")
    return eid


def sample_ids(ctx: Context, event_id: int) -> dict[str, Any]:
    """Ids of the sample: a live speaker, a not-live one, their studios."""
    from sqlmodel import select

    from qa_service.db.models import Segment, Speaker, Studio

    with ctx.transaction() as (db, _):
        studios = {s.slug: s for s in db.exec(select(Studio).where(Studio.event_id == event_id))}
        segs = {s.studio_id: s for s in db.exec(select(Segment).where(Segment.event_id == event_id))}
        speakers = list(db.exec(select(Speaker)))
    by_studio: dict[str, list[Speaker]] = {}
    for sp in speakers:
        seg = next(s for s in segs.values() if s.id == sp.segment_id)
        slug = next(k for k, st in studios.items() if st.id == seg.studio_id)
        by_studio.setdefault(slug, []).append(sp)
    return {"studios": studios, "speakers": by_studio, "segments": segs}


@pytest.fixture
def sample(ctx: Context, event_id: int) -> dict[str, Any]:
    return sample_ids(ctx, event_id)


@pytest.fixture
def server(settings: Settings, event_id: int) -> Iterator[ThreadServer]:
    srv = start_server(settings)
    yield srv
    srv.stop()


@pytest.fixture
def moderator(server: ThreadServer) -> Iterator[Any]:
    client = login(server.base, "mod1", MOD_PASSWORD)
    yield client
    client.close()


@pytest.fixture
def moderator_factory() -> Any:
    def make(srv: ThreadServer, username: str = "mod1") -> Any:
        return login(srv.base, username, MOD_PASSWORD)

    return make
