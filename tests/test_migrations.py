"""The Alembic history builds exactly the schema the models describe."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from qa_service.db import models  # noqa: F401
from qa_service.db.engine import make_engine

pytestmark = pytest.mark.integration


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    finally:
        engine.dispose()
    assert diff == []


def _alembic(url: str) -> Any:
    from alembic.config import Config

    from qa_service.db.engine import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine_url"] = url
    return cfg


def test_0004_keeps_the_newest_on_air_question_and_downgrades(
    db_url: str, ctx: Any, event_id: int, sample: Any
) -> None:
    """A studio the old race left with several questions on air keeps the one that went
    on air last (the others become answered); then the index holds. And back down again."""
    from alembic import command

    from .services.support import ask

    speaker = sample["speakers"]["moscow"][0].id
    ids = [ask(ctx, event_id, speaker, f"Question {i}?") for i in range(3)]
    cfg = _alembic(db_url)
    command.downgrade(cfg, "0003")
    with ctx.engine.begin() as conn:
        for minute, qid in zip((3, 7, 5), ids, strict=True):
            conn.execute(
                sa.text("UPDATE question SET status = 'on_air', updated_at = :at WHERE id = :id"),
                {"at": datetime(2030, 1, 7, 9, minute), "id": qid},
            )
    command.upgrade(cfg, "head")
    with ctx.engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT id, status FROM question")).all())
        versions = dict(conn.execute(sa.text("SELECT id, version FROM question")).all())
    assert rows == {ids[0]: "answered", ids[1]: "on_air", ids[2]: "answered"}
    assert versions == {ids[0]: 2, ids[1]: 1, ids[2]: 2}
    command.downgrade(cfg, "0003")
    command.upgrade(cfg, "head")


def test_0009_adds_host_links_and_old_tokens_keep_opening(db_url: str, ctx: Any, event_id: int, sample: Any) -> None:
    """Links signed before 0009 name no row: they keep opening after the upgrade (until
    their studio's version is bumped); the table goes and comes back with the revision."""
    from alembic import command
    from sqlmodel import Session

    from qa_service.security import Signer
    from qa_service.services.staff import link_open

    studio = sample["studios"]["moscow"]
    cfg = _alembic(db_url)
    command.downgrade(cfg, "0008")
    assert "hostlink" not in sa.inspect(ctx.engine).get_table_names()
    old = Signer("k" * 40).host_token(studio.id, studio.host_token_version)
    command.upgrade(cfg, "head")
    assert "hostlink" in sa.inspect(ctx.engine).get_table_names()
    claims = Signer("k" * 40).read_host_token(old)
    assert claims is not None and claims.link_id is None and claims.version == studio.host_token_version
    with ctx.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO hostlink (studio_id, studio_version, label, created_by, created_at) "
                "VALUES (:s, 1, '', 'test', :at)"
            ),
            {"s": studio.id, "at": datetime(2030, 1, 1)},
        )
    with Session(ctx.engine) as db:
        assert link_open(db, 1, studio.id)
