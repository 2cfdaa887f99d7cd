"""`qa-service models …` and `qa-service bench`, run as a user would."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from qa_service.services.event_loader import SAMPLE
from qa_service.settings import Settings

from .conftest import worker_env

pytestmark = pytest.mark.integration


def cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qa_service.cli", *args],
        env=worker_env(settings, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_list_names_installed_pairs_and_what_the_event_lacks(worker_settings, ctx) -> None:
    from qa_service.services.event_loader import load

    load(ctx, SAMPLE)
    out = cli(worker_settings, "models", "list")
    assert out.returncode == 0, out.stderr
    assert "en→ru" in out.stdout and "TEST MODEL" in out.stdout
    assert "not covered for the loaded event" in out.stdout
    assert "uz→" in out.stdout  # no Argos model knows Uzbek
    assert "ar→ru (moderators)" in out.stdout


def test_import_refuses_what_is_not_a_package(worker_settings, tmp_path: Path) -> None:
    junk = tmp_path / "junk.argosmodel"
    junk.write_bytes(b"not a zip")
    two_tops = tmp_path / "two.argosmodel"
    with zipfile.ZipFile(two_tops, "w") as z:
        z.writestr("a/metadata.json", "{}")
        z.writestr("b/model/model.bin", "")
    for path, message in (
        (junk, "not a zip"),
        (two_tops, "one top-level folder"),
        (tmp_path / "none", "no .argosmodel"),
    ):
        out = cli(worker_settings, "models", "import", str(path))
        assert out.returncode == 2 and message in out.stderr, out.stderr


def test_install_fails_fast_offline(argos_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import models

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("offline")

    monkeypatch.setattr(socket, "create_connection", refuse)
    settings = Settings(data_dir=argos_dir, argos_dir=argos_dir)
    with pytest.raises(models.ModelError, match="not reachable"):
        models.install(settings, ["fr"])


def test_bench_writes_json(worker_settings, tmp_path: Path) -> None:
    out_file = tmp_path / "bench.json"
    out = cli(worker_settings, "bench", "--questions", "16", "--out", str(out_file))
    assert out.returncode == 0, out.stderr
    data = json.loads(out_file.read_text())
    assert data["pair"] == "en-ru" and data["test_model"] is True
    assert set(data["runs"]) == {f"threads={t},batch={b}" for t in (1, 2) for b in (1, 8, 32)}
    for run in data["runs"].values():
        assert run["questions_per_second"] > 0 and run["latency_p99_ms"] >= run["latency_p50_ms"] > 0
