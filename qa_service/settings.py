"""One typed settings object, read from the environment (prefix ``QA_``).

Nothing here runs at import time: call :func:`load_settings` (the CLI does)
and pass the result to ``create_app``.  Malformed values fail loudly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "dev-insecure-secret"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QA_", extra="forbid", frozen=True)

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Field(default=Path("./.qa-data"))
    database_url: str | None = None  # default: SQLite file in data_dir
    redis_url: str | None = None  # default: embedded redis-server in data_dir
    redis_prefix: str = Field(default="qa", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    event: str | None = None  # slug of the event this service runs; default: the first loaded
    auto_migrate: bool = True  # upgrade the schema at start (turn off when several hubs start at once)
    secret_key: str = "dev-insecure-secret"
    public_url: str = ""  # base URL printed in links; default http://host:port

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    max_question_chars: int = Field(default=500, ge=1, le=10_000)
    max_name_chars: int = Field(default=60, ge=1, le=500)
    max_frame_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    accept_upcoming_questions: bool = False
    questions_per_minute: int = Field(default=5, ge=1)  # per viewer
    messages_per_second: int = Field(default=20, ge=1)  # per socket, any type
    socket_queue_size: int = Field(default=256, ge=8)  # outgoing messages per socket
    history_size: int = Field(default=2000, ge=10)  # events kept per channel for replay
    schedule_tick_seconds: float = Field(default=5.0, gt=0)
    # recovery
    bus_heartbeat_seconds: float = Field(default=2.0, gt=0, le=60)  # a silent bus is dead after 3 of these
    access_recheck_seconds: float = Field(default=3.0, gt=0, le=300)  # revoked links / disabled staff lose sockets
    db_timeout_seconds: float = Field(default=10.0, gt=0, le=300)  # connect and statement timeout (PostgreSQL)
    redis_timeout_seconds: float = Field(default=5.0, gt=0, le=300)  # connect and command timeout
    redis_max_connections: int = Field(default=100, ge=2, le=10_000)  # per hub; beyond it requests wait
    # translation workers
    translation_queue: str = Field(default="translate", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    argos_dir: Path | None = None  # default: data_dir/argos (packages, caches; nothing in ~)
    preload_pairs: str = Field(default="all", pattern=r"^(all|none|([a-z]{2,3}-[a-z]{2,3})(,[a-z]{2,3}-[a-z]{2,3})*)$")
    translate_threads: int = Field(default=1, ge=1, le=64)  # CTranslate2 intra-op threads
    translate_batch_size: int = Field(default=32, ge=1, le=1024)  # questions per CTranslate2 call
    # CTranslate2 compute type: "auto" takes the fastest this CPU supports (int8 kernels on x86).
    translate_compute_type: Literal[
        "auto", "default", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float32", "bfloat16"
    ] = "auto"
    translate_job_timeout: int = Field(default=60, ge=1)
    translate_max_attempts: int = Field(default=4, ge=1, le=20)  # per question, across jobs and workers
    worker_sweep_seconds: float = Field(default=10.0, gt=0, le=3600)  # re-queue what nobody works on
    worker_lease_seconds: float = Field(default=10.0, ge=1, le=600)  # a killed worker's questions free up after
    detect_min_chars: int = Field(default=20, ge=1)
    worker_job_delay: float = Field(default=0.0, ge=0)  # fault injection for tests only
    session_max_age: int = Field(default=12 * 3600, ge=60)
    cookie_secure: bool = False

    @field_validator("database_url", "redis_url", "event", mode="before")
    @classmethod
    def _empty_is_none(cls, v: object) -> object:
        return None if v == "" else v

    @model_validator(mode="after")
    def _production_needs_real_secret(self) -> Settings:
        if self.environment == "production":
            if self.secret_key in PLACEHOLDER_SECRETS or len(self.secret_key) < 32:
                raise ValueError("QA_SECRET_KEY must be a random string of 32+ characters in production")
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'qa.sqlite3').resolve()}"

    @property
    def queue_name(self) -> str:
        """The RQ queue, namespaced by the Redis prefix (two deployments may share a Redis)."""
        return f"{self.redis_prefix}.{self.translation_queue}"


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; keyword overrides win."""
    return Settings(**overrides)  # type: ignore[arg-type]
