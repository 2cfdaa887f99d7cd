"""SQL persistence: tables, engine and sessions, Alembic migrations."""
