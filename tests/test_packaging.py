"""The hub does not carry torch: what a hub imports, what pyproject.toml promises, what the lock pins.

A hub machine installs `qa-service` without the `[worker]` extra (scripts/install --hub, the
Docker image's hub target), so nothing on the serve path may import the translation stack,
and everything it does import must come from the core dependencies. The import checks run a
fresh interpreter of this venv, where the extra *is* installed: an import that crept back in
shows up there as a recorded import, not as a crash on someone's hub machine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tomllib
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.requirements import Requirement

from qa_service.settings import Settings

from .support import SECOND, free_port, wait_until, ws_client

ROOT = Path(__file__).resolve().parent.parent
# The translation stack: argostranslate → stanza → torch, CTranslate2, its sentence splitters, lingua.
HEAVY = (
    "torch",
    "argostranslate",
    "stanza",
    "ctranslate2",
    "lingua",
    "minisbd",
    "spacy",
    "sentencepiece",
    "onnxruntime",
)
WORKER_ONLY = {"argostranslate", "lingua-language-detector", "ctranslate2", "minisbd", "torch", "stanza"}

# Put first on sys.meta_path in the child: every import of a HEAVY package not yet loaded is
# written to RECORD at once (a `try: import torch / except ImportError` cannot hide it), and
# SIGUSR1 writes the top-level names of everything loaded so far to RECORD.modules.
RECORDER = """
import os, signal, sys
RECORD = os.environ["QA_TEST_IMPORT_RECORD"]
HEAVY = set(os.environ["QA_TEST_HEAVY"].split(","))

class Recorder:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HEAVY:
            with open(RECORD, "a") as fh:
                fh.write(name + "\\n")
        return None

sys.meta_path.insert(0, Recorder())

def dump_modules(*_):
    with open(RECORD + ".tmp", "w") as fh:
        fh.write("\\n".join(sorted({m.partition(".")[0] for m in list(sys.modules)})))
    os.replace(RECORD + ".tmp", RECORD + ".modules")

signal.signal(signal.SIGUSR1, dump_modules)
"""


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _core_closure() -> set[str]:
    """Every distribution a plain `pip install qa-service` (no extra) brings: pyproject.toml's
    dependencies, then theirs from the installed metadata, with the extras asked for."""
    seen: set[str] = set()
    todo: list[tuple[str | None, frozenset[str]]] = [(None, frozenset())]
    while todo:
        dist, extras = todo.pop()
        for text in _pyproject()["dependencies"] if dist is None else metadata.requires(dist) or []:
            req = Requirement(text)
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in {"", *extras}):
                continue
            name = _normal(req.name)
            key = f"{name}[{','.join(sorted(req.extras))}]"
            if key in seen:
                continue
            seen.add(key)
            try:
                metadata.distribution(name)
            except metadata.PackageNotFoundError:
                continue  # a requirement for another platform or Python
            todo.append((name, frozenset(req.extras)))
    return {key.partition("[")[0] for key in seen}


def _outside_core(top_level_modules: list[str]) -> dict[str, list[str]]:
    """Loaded modules whose distribution is not in the core closure (works here, breaks a hub machine)."""
    owners = metadata.packages_distributions()
    core = _core_closure() | {"qa-service"}
    out: dict[str, list[str]] = {}
    for module in top_level_modules:
        dists = {_normal(d) for d in owners.get(module, [])}
        if dists and not dists & core:
            out[module] = sorted(dists)
    return out


def _child_env(tmp_path: Path, **qa: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(QA_TEST_IMPORT_RECORD=str(tmp_path / "heavy-imports"), QA_TEST_HEAVY=",".join(HEAVY), **qa)
    return env


def _recorded(tmp_path: Path) -> list[str]:
    """The HEAVY packages the child tried to import (top-level names)."""
    record = tmp_path / "heavy-imports"
    return sorted({name.partition(".")[0] for name in record.read_text().split()}) if record.exists() else []


def test_importing_the_hub_and_creating_its_app_loads_no_translation_stack(tmp_path: Path) -> None:
    script = RECORDER + (
        "import json\n"
        "import qa_service.app, qa_service.cli, qa_service.server\n"
        "from qa_service.app import create_app\n"
        "from qa_service.settings import Settings\n"
        "app = create_app(Settings(data_dir=sys.argv[1], redis_url='redis://127.0.0.1:9/0',"
        " secret_key='packaging-test-' + 'k' * 40))\n"
        "assert app.routes\n"
        "print(json.dumps(sorted({m.partition('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "data")],
        env=_child_env(tmp_path),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60 * SECOND,
    )
    assert out.returncode == 0, out.stderr
    modules = json.loads(out.stdout)
    assert _recorded(tmp_path) == []
    assert not set(HEAVY) & set(modules)
    assert _outside_core(modules) == {}


def _dump_modules(proc: subprocess.Popen[bytes], tmp_path: Path) -> list[str]:
    target = tmp_path / "heavy-imports.modules"
    proc.send_signal(signal.SIGUSR1)
    wait_until(target.exists, 10 * SECOND, "the hub's module list")
    return target.read_text().split()


@pytest.mark.integration
def test_a_serving_hub_loads_no_translation_stack(tmp_path: Path, settings: Settings, sample: dict[str, Any]) -> None:
    """`qa-service serve` for real: readiness, the pages, a viewer's hello and a question
    (whose translation the hub queues for a worker) import nothing of the worker extra."""
    port = free_port()
    env = _child_env(
        tmp_path,
        QA_DATABASE_URL=settings.effective_database_url,
        QA_REDIS_URL=settings.redis_url or "",
        QA_REDIS_PREFIX=settings.redis_prefix,
        QA_SECRET_KEY=settings.secret_key or "",
        QA_DATA_DIR=str(settings.data_dir),
        QA_PORT=str(port),
        QA_AUTO_MIGRATE="false",
    )
    script = RECORDER + "from qa_service.cli import main\nsys.exit(main(['serve']))\n"
    log = tmp_path / "serve.log"
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT, stderr=err)
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 30 * SECOND, "the hub's /readyz")
        for path in ("/", "/moderate", "/openapi.json", "/api/schedule"):
            assert httpx.get(base + path, timeout=5 * SECOND).status_code == 200, path
        speaker = sample["speakers"]["moscow"][1]
        with ws_client(f"ws://127.0.0.1:{port}/ws/viewer") as viewer:
            assert viewer.request("hello")["ok"]
            reply = viewer.request(
                "question.ask",
                {"client_id": uuid.uuid4().hex, "speaker_id": speaker.id, "text": "Where is torch?", "language": "en"},
            )
            assert reply["ok"], reply
        modules = _dump_modules(proc, tmp_path)
        assert "rq" in modules  # the question's translation was queued: the enqueue path ran
    finally:
        proc.terminate()
        proc.wait(20 * SECOND)
    assert _recorded(tmp_path) == []
    assert not set(HEAVY) & set(modules)
    assert _outside_core(modules) == {}


@pytest.mark.parametrize("argv", [["worker"], ["models", "list"], ["bench"], ["demo"]])
def test_translation_commands_without_the_extra_say_what_to_install(tmp_path: Path, argv: list[str]) -> None:
    """On a hub install the worker commands end with one line, not a traceback. The child
    hides the extra's packages (None in sys.modules: "not installed" to the import system)."""
    hidden = ("argostranslate", "ctranslate2", "minisbd", "lingua", "torch", "stanza")
    script = (
        f"import sys\nfor name in {hidden!r}:\n    sys.modules[name] = None\n"
        "from qa_service.cli import main\n"
        f"sys.exit(main({argv!r}))\n"
    )
    env = _child_env(tmp_path, QA_DATA_DIR=str(tmp_path / "data"))
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60 * SECOND
    )
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"install qa-service[worker] to run 'qa-service {argv[0]}'"), lines[0]
    assert "missing: argostranslate, ctranslate2, minisbd, lingua" in lines[0]


def test_the_worker_guard_finds_the_extra_where_it_is_installed() -> None:
    """The guard's module names are the real ones: with the extra installed (this venv) it lets the commands run."""
    from qa_service.cli import WORKER_MODULES, _missing_worker_extra

    assert _missing_worker_extra("worker") is None
    worker_dists = {_normal(r.name) for r in map(Requirement, _pyproject()["optional-dependencies"]["worker"])}
    owners = metadata.packages_distributions()
    for module in WORKER_MODULES:  # each one is imported from a package the extra names
        assert {_normal(d) for d in owners[module]} & worker_dists, module


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_translation_packages_are_in_the_worker_extra_only() -> None:
    project = _pyproject()
    extras = project["optional-dependencies"]
    core = {_normal(Requirement(r).name) for r in project["dependencies"]}
    worker = {_normal(Requirement(r).name) for r in extras["worker"]}
    assert {"argostranslate", "lingua-language-detector"} <= worker
    assert not core & WORKER_ONLY, "the hub would install the translation stack"
    for name, reqs in extras.items():
        if name != "worker":
            assert not {_normal(Requirement(r).name) for r in reqs} & WORKER_ONLY, name
    # and the hub's own needs stay in core
    assert {"starlette", "uvicorn", "websockets", "redis", "rq", "sqlmodel", "psycopg", "prometheus-client"} <= core


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements" / "lock.txt").read_text(encoding="utf-8").splitlines():
        spec = line.split("#", 1)[0].strip()
        if spec:
            name, _, version = spec.partition("==")
            pins[_normal(name)] = version
    return pins


def test_the_lock_pins_the_core_and_the_worker_and_test_extras() -> None:
    """scripts/lock resolves --extra worker --extra test: every direct requirement is pinned,
    and so is the stack under argostranslate, torch at the CPU build requirements/torch.txt names."""
    project = _pyproject()
    pins = _lock()
    direct = project["dependencies"] + project["optional-dependencies"]["worker"]
    direct += project["optional-dependencies"]["test"]
    for text in direct:
        req = Requirement(text)
        name = _normal(req.name)
        assert name in pins, f"{name} is not in requirements/lock.txt: run scripts/lock"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} does not meet {text}"
    assert {"stanza", "sentencepiece", "onnxruntime"} <= pins.keys()
    torch = next(
        line.strip()
        for line in (ROOT / "requirements" / "torch.txt").read_text().splitlines()
        if line.startswith("torch")
    )
    assert f"torch=={pins['torch']}" == torch
    script = (ROOT / "scripts" / "lock").read_text(encoding="utf-8")
    assert "--extra worker" in script and "--extra test" in script
