"""Alembic environment: runs migrations against the URL the CLI passes in."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from qa_service.db import models  # noqa: F401  (registers the tables)
from qa_service.db.engine import make_engine

config = context.config
url = str(config.attributes.get("engine_url") or config.get_main_option("sqlalchemy.url"))


def run() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
