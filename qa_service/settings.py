"""One typed settings object, read from the environment (prefix ``QA_``).

Nothing here runs at import time: call :func:`load_settings` (the CLI does)
and pass the result to ``create_app``.  Malformed values fail loudly.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_EMBED_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?")  # no IPv6 literal: CSP cannot name one

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "dev-insecure-secret"}
MIN_SECRET_BITS = 100  # estimated (Shannon) bits; secrets.token_urlsafe(32) has ≈200


def estimated_bits(secret: str) -> float:
    """A rough estimate of a secret's entropy: the Shannon entropy of its characters
    times its length, where repeats do not count (the length is the number of
    distinct 3-character windows). "x" * 64 and "0123456789abcdef" * 2 score low,
    a 43-character secrets.token_urlsafe(32) about 200."""
    if not secret:
        return 0.0
    counts = Counter(secret)
    per_char = -sum(c / len(secret) * math.log2(c / len(secret)) for c in counts.values())
    distinct = len({secret[i : i + 3] for i in range(max(1, len(secret) - 2))})
    return per_char * min(len(secret), distinct + 2)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class Settings(BaseSettings):
    # hide_input_in_errors: a configuration error never prints the secret (or any value).
    model_config = SettingsConfigDict(env_prefix="QA_", extra="forbid", frozen=True, hide_input_in_errors=True)

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Field(default=Path("./.qa-data"))
    database_url: str | None = None  # default: SQLite file in data_dir
    redis_url: str | None = None  # default: embedded redis-server in data_dir
    redis_prefix: str = Field(default="qa", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    event: str | None = None  # slug of the event this service runs; default: the first loaded
    auto_migrate: bool = True  # upgrade the schema at start (turn off when several hubs start at once)
    # Signs staff cookies, host links and viewer tokens; every hub of a deployment needs
    # the same one. Unset in development: generated once into data_dir/secret_key (0600).
    secret_key: str | None = None
    secret_key_file: Path | None = None  # read the key from this file (Docker/Kubernetes secrets)
    # Where people open the pages (https://qa.example.org). The one source of the
    # Origin allow-list and the CSP; default http://host:port. The Host header is never trusted.
    public_url: str = Field(default="", pattern=r"^(https?://[^/?#\s]+/?)?$")
    # Proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For / Forwarded headers
    # are believed. Default: none; a client's address is the TCP peer.
    trusted_proxies: str = ""
    # The one header those proxies write the client's address into; the other is ignored
    # (a client could send it, and a proxy passes it on untouched).
    proxy_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    max_question_chars: int = Field(default=500, ge=1, le=10_000)
    max_name_chars: int = Field(default=60, ge=1, le=500)
    max_frame_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    # edge limits (enforced while reading, before the app sees a request)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)  # a request's headers must arrive within
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)  # and its body within this after them
    hello_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300
    )  # a socket must say hello within; frames do not extend it
    # open sockets + requests in flight from one client address, per hub (an office behind NAT is one address)
    max_connections_per_address: int = Field(default=1000, ge=1)
    accept_upcoming_questions: bool = False
    questions_per_minute: int = Field(default=5, ge=1)  # per viewer
    messages_per_second: int = Field(default=20, ge=1)  # per socket, any type
    votes_per_minute: int = Field(default=60, ge=1)  # per viewer (a vote and its take-back are two)
    vote_flush_seconds: float = Field(default=1.0, gt=0, le=60)  # vote counts go out at most this often per question
    feed_languages: int = Field(default=12, ge=0, le=100)  # the feed is machine-translated into at most this many
    socket_queue_size: int = Field(default=256, ge=8)  # outgoing messages per socket
    resync_per_second: int = Field(default=1000, ge=1)  # per hub, after a bus reconnect (staff sockets first)
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
    cookie_secure: bool | None = None  # default: true in production (HTTPS only, and HSTS)
    # logins: attempts per minute per client address and per account; argon2 runs at most this many at once
    login_attempts_per_address: int = Field(default=20, ge=1)
    login_attempts_per_account: int = Field(default=10, ge=1)
    login_concurrency: int = Field(default=2, ge=1, le=64)
    host_link_hours: float | None = Field(default=None, gt=0)  # host links expire after this; default never
    address_ban_minutes: int = Field(default=60, ge=1, le=60 * 24 * 30)  # "hide asker" also bans the address so long
    retention_days: int | None = Field(default=None, ge=1)  # events ended longer ago are purged; default kept
    # observability
    log_format: Literal["text", "json"] = "text"  # json: one JSON object per log line (hub and worker)
    metrics_allow: str = ""  # IPs or CIDRs (comma-separated) besides loopback that may read /metrics
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)  # a worker's /metrics; default off
    worker_metrics_host: str = "127.0.0.1"  # where a worker's /metrics listens
    # partner sites: origins (comma-separated, https://partner.example) whose pages may show /embed in a frame
    embed_origins: str = ""

    @field_validator("database_url", "redis_url", "event", mode="before")
    @classmethod
    def _empty_is_none(cls, v: object) -> object:
        return None if v == "" else v

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_parse(cls, v: str) -> str:
        for item in filter(None, (p.strip() for p in v.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"QA_TRUSTED_PROXIES: {item!r} is not an IP address or CIDR network") from None
        return v

    @field_validator("worker_metrics_port", mode="before")
    @classmethod
    def _no_port_is_none(cls, v: object) -> object:
        return None if v == "" else v

    @field_validator("metrics_allow")
    @classmethod
    def _metrics_allow_parses(cls, v: str) -> str:
        for item in filter(None, (p.strip() for p in v.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"QA_METRICS_ALLOW: {item!r} is not an IP address or CIDR network") from None
        return v

    @field_validator("embed_origins")
    @classmethod
    def _embed_origins_parse(cls, v: str) -> str:
        for item in filter(None, (p.strip() for p in v.split(","))):
            if not _EMBED_ORIGIN.fullmatch(item):
                raise ValueError(
                    f"QA_EMBED_ORIGINS: {item!r} is not an origin (scheme://host[:port], e.g. https://partner.example)"
                )
        return v

    @model_validator(mode="after")
    def _production_needs_real_secret(self) -> Settings:
        if self.secret_key is not None and self.secret_key_file is not None:
            raise ValueError("set QA_SECRET_KEY or QA_SECRET_KEY_FILE, not both")
        if self.environment == "production":
            if self.secret_key is None and self.secret_key_file is None:
                raise ValueError(
                    "production needs QA_SECRET_KEY (or QA_SECRET_KEY_FILE), the same on every hub: "
                    "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
            if self.secret_key is not None:
                check_secret_strength(self.secret_key)
            if not self.public_url:
                raise ValueError(
                    "production needs QA_PUBLIC_URL (https://qa.example.org): it defines the allowed Origin"
                )
        return self

    @property
    def proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(p.strip(), strict=False) for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def embed_origin_list(self) -> list[str]:
        return [p.strip().rstrip("/") for p in self.embed_origins.split(",") if p.strip()]

    @property
    def metrics_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(p.strip(), strict=False) for p in self.metrics_allow.split(",") if p.strip()]

    @property
    def base_url(self) -> str:
        """Where people open the pages: QA_PUBLIC_URL, else this machine."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def allowed_origins(self) -> frozenset[str]:
        """Origins whose pages may open staff sockets and send writes. Without
        QA_PUBLIC_URL on a loopback bind, the loopback names of this port too."""
        origins = {_origin(self.base_url)}
        if not self.public_url and self.host in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::", ""):
            origins |= {f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}", f"http://[::1]:{self.port}"}
        return frozenset(origins)

    @property
    def secure_cookies(self) -> bool:
        return self.cookie_secure if self.cookie_secure is not None else self.environment == "production"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'qa.sqlite3').resolve()}"

    @property
    def queue_name(self) -> str:
        """The RQ queue, namespaced by the Redis prefix (two deployments may share a Redis)."""
        return f"{self.redis_prefix}.{self.translation_queue}"

    @property
    def audience_queue_name(self) -> str:
        """The queue of the feed's translations for viewers: workers take it only when
        the moderators' queue is empty, so a crowd of readers never delays moderation."""
        return f"{self.queue_name}.audience"


def check_secret_strength(secret: str) -> None:
    """Refuse placeholders, short and low-entropy keys (the message never shows the key)."""
    if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 32 or estimated_bits(secret) < MIN_SECRET_BITS:
        raise ValueError(
            f"QA_SECRET_KEY is too weak for production (it needs 32+ characters and about {MIN_SECRET_BITS}+ bits "
            "of randomness): python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; keyword overrides win."""
    return Settings(**overrides)  # type: ignore[arg-type]
