"""The qa-service command line, run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from sqlmodel import select

from qa_service.db.models import Segment, User
from qa_service.services.event_loader import SAMPLE
from qa_service.settings import Settings

pytestmark = pytest.mark.integration


def run(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "QA_REDIS_URL"}
    full_env = (
        base
        | {
            "QA_DATABASE_URL": settings.effective_database_url,
            "QA_DATA_DIR": str(settings.data_dir),
            "QA_SECRET_KEY": settings.secret_key,
        }
        | env
    )
    return subprocess.run(
        [sys.executable, "-m", "qa_service.cli", *args], env=full_env, capture_output=True, text=True, timeout=120
    )


def test_db_upgrade_event_load_users_add_and_host_links(settings, ctx) -> None:
    assert run(settings, "db", "upgrade").returncode == 0
    loaded = run(settings, "event", "load", str(SAMPLE), "--start-now")
    assert loaded.returncode == 0, loaded.stderr
    added = run(settings, "users", "add", "anna", "--role", "moderator", QA_NEW_USER_PASSWORD="long-enough-pw")
    assert added.returncode == 0, added.stderr
    with ctx.transaction() as (db, _):
        user = db.exec(select(User).where(User.username == "anna")).one()
        assert user.role == "moderator" and user.password_hash.startswith("$argon2id$")
        assert "live" in {s.status for s in db.exec(select(Segment))}
    links = run(settings, "host-links")
    assert links.returncode == 0 and links.stdout.count("/host/") == 9
    revoked = run(settings, "host-links", "--revoke", "cairo")
    cairo_old = next(line for line in links.stdout.splitlines() if line.startswith("cairo"))
    cairo_new = next(line for line in revoked.stdout.splitlines() if line.startswith("cairo"))
    assert cairo_old != cairo_new


def test_bad_input_fails_loudly(settings, tmp_path: Path) -> None:
    short = run(settings, "users", "add", "bob", "--role", "moderator", QA_NEW_USER_PASSWORD="short")
    assert short.returncode == 2 and "8 characters" in short.stderr
    bad_role = run(settings, "users", "add", "bob", "--role", "king", QA_NEW_USER_PASSWORD="long-enough-pw")
    assert bad_role.returncode == 2
    broken = tmp_path / "broken.yaml"
    broken.write_text("event: {slug: x}\n")
    result = run(settings, "event", "load", str(broken))
    assert result.returncode == 2 and "'name' is required" in result.stderr
    bad_setting = run(settings, "db", "upgrade", QA_PORT="eighty")
    assert bad_setting.returncode == 2 and "port" in bad_setting.stderr
    prod = run(settings, "db", "upgrade", QA_ENVIRONMENT="production", QA_SECRET_KEY="change-me")
    assert prod.returncode == 2 and "QA_SECRET_KEY" in prod.stderr


def test_without_a_redis_url_the_app_runs_its_own_redis(settings_factory, event_id) -> None:
    from .support import start_server, ws_client

    settings = settings_factory(redis_url=None)
    srv = start_server(settings)
    try:
        url = srv.server.config.app.state.redis_url
        assert url.startswith("unix://")
        assert redis.Redis.from_url(url).ping()
        with ws_client(f"{srv.ws_base}/ws/viewer") as c:
            assert c.request("hello")["ok"]
    finally:
        srv.stop()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url).ping()


def test_health_of_a_hub_and_of_a_worker_host(settings, event_id, redis_url) -> None:

    from .support import free_port, start_server

    port = free_port()
    # Nothing listens and no worker of this host is registered in Redis.
    assert run(settings, "health", QA_PORT=str(port), QA_REDIS_URL=redis_url).returncode == 1
    srv = start_server(settings, port)
    try:
        assert run(settings, "health", QA_PORT=str(port)).returncode == 0
    finally:
        srv.stop()


def test_models_list_on_a_fresh_data_directory_answers_without_a_traceback(settings_factory, tmp_path: Path) -> None:
    fresh = settings_factory(data_dir=tmp_path / "fresh", database_url=f"sqlite:///{tmp_path / 'fresh' / 'qa.db'}")
    listed = run(fresh, "models", "list")
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr


def test_bench_hub_help_creates_no_data_directory(settings, tmp_path: Path) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "qa_service.cli", "bench-hub", "--help"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("QA_")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert not (tmp_path / ".qa-data").exists()


def test_export_unanswered_writes_one_private_csv_per_speaker(settings, ctx, event_id, sample, tmp_path: Path) -> None:
    import csv
    import uuid

    from qa_service.services import questions

    speaker = sample["speakers"]["moscow"][0]
    payload = {
        "client_id": uuid.uuid4().hex,
        "speaker_id": speaker.id,
        "text": "Do you export to Europe?",
        "language": "en",
        "fields": {"company": "Uralmash"},
        "contact": {"email": "ana@example.org", "consent": True},
    }
    qid = int(questions.ask(ctx, event_id, "viewer-ana", payload).question["id"])
    questions.moderate(ctx, event_id, qid, "approve", "mod1", expected_version=None)  # let through, not reached
    out = tmp_path / "export"
    done = run(settings, "export", "unanswered", "--speaker", str(speaker.id), "--out", str(out))
    assert done.returncode == 0, done.stderr
    (path,) = out.iterdir()
    assert (
        path.name == f"unanswered-{speaker.id}-anna-sokolova.csv" and "1 question(s) for Anna Sokolova" in done.stdout
    )
    assert (path.stat().st_mode & 0o777, out.stat().st_mode & 0o777) == (0o600, 0o700)
    (row,) = csv.DictReader(path.read_text(encoding="utf-8").splitlines())
    assert (row["question"], row["field_company"], row["email"]) == (
        "Do you export to Europe?",
        "Uralmash",
        "ana@example.org",
    )
    missing = run(settings, "export", "unanswered", "--speaker", "999999", "--out", str(out))
    assert missing.returncode == 2 and "no speaker 999999" in missing.stderr
