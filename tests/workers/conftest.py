"""Translation fixtures: the project's small real Argos models, installed once."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from qa_service.db.models import Question, Translation
from qa_service.services import questions
from qa_service.services.context import Context
from qa_service.settings import Settings

from ..faults import ServiceProcess, service_env

PHRASES = Path(__file__).resolve().parents[2] / "workers" / "test_models" / "phrases.tsv"


def phrases() -> list[dict[str, str]]:
    import csv

    with open(PHRASES, encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def ask(ctx: Context, event_id: int, speaker_id: int, text: str, language: str) -> int:
    payload = {"client_id": uuid.uuid4().hex, "speaker_id": speaker_id, "text": text, "language": language}
    return int(questions.ask(ctx, event_id, "viewer-0001", payload).question["id"])


def translations(ctx: Context, qid: int) -> dict[str, Translation]:
    with ctx.read() as db:
        return {t.language: t for t in db.exec(select(Translation).where(Translation.question_id == qid))}


def question(ctx: Context, qid: int) -> Question:
    with ctx.read() as db:
        q = db.get(Question, qid)
        assert q is not None
        return q


_ARGOS_ROOT: list[Path] = []  # the one home of this process (test modules import this fixture too)


@pytest.fixture(scope="session")
def argos_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One argostranslate home for the whole run (it is configured once per process).
    Browser tests import this fixture into their modules, which makes a definition of
    its own per module: each finds the home the first one made."""
    from workers import models
    from workers.runtime import argos_root

    if _ARGOS_ROOT:
        return _ARGOS_ROOT[0]
    root = tmp_path_factory.mktemp("argos")
    settings = Settings(data_dir=root, argos_dir=root)
    models.import_path(settings, models.TEST_MODELS)
    assert Path(argos_root(settings)) == root
    _ARGOS_ROOT.append(root)
    return root


@pytest.fixture
def worker_settings(settings_factory: Any, argos_dir: Path) -> Settings:
    return settings_factory(argos_dir=argos_dir)


worker_env = service_env  # what a worker subprocess inherits from the test's settings


class WorkerProcess(ServiceProcess):
    """`qa-service worker` as a subprocess, started at once."""

    def __init__(self, settings: Settings, *args: str, **env: str) -> None:
        super().__init__(settings, "worker", *args, **env)
        self.start()
        assert self.proc is not None
        self.proc: subprocess.Popen[bytes] = self.proc

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)


@pytest.fixture
def start_worker(worker_settings: Settings) -> Iterator[Any]:
    started: list[WorkerProcess] = []

    def start(*args: str, settings: Settings | None = None, **env: str) -> WorkerProcess:
        w = WorkerProcess(settings or worker_settings, *args, **env)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()
