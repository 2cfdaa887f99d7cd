"""Model management: `qa-service models list | install CODE… | import PATH`."""

from __future__ import annotations

import json
import socket
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from qa_service.settings import Settings

from . import argos_env
from .planner import uncovered
from .runtime import argos_root

TEST_MODELS = Path(__file__).resolve().parent / "test_models"


class ModelError(Exception):
    pass


def _argos(settings: Settings) -> Any:
    argos_env.configure(argos_root(settings), intra_threads=settings.translate_threads)
    import argostranslate.package as package

    return package


def installed(settings: Settings) -> list[dict[str, str]]:
    package = _argos(settings)
    out = []
    for pkg in package.get_installed_packages():
        if getattr(pkg, "type", "translate") != "translate":
            continue
        version = str(getattr(pkg, "package_version", "?"))
        out.append(
            {"from": pkg.from_code, "to": pkg.to_code, "version": version, "test": str(version.endswith("-test"))}
        )
    return sorted(out, key=lambda p: (p["from"], p["to"]))


def check_package(path: Path) -> dict[str, Any]:
    """An .argosmodel is a zip with ONE top folder holding metadata.json and model/."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            tops = {n.split("/", 1)[0] for n in names}
            if len(tops) != 1:
                raise ModelError(f"{path.name}: expected one top-level folder, found {len(tops)}")
            top = tops.pop()
            if f"{top}/metadata.json" not in names or not any(n.startswith(f"{top}/model/") for n in names):
                raise ModelError(f"{path.name}: no metadata.json or model/ folder inside")
            meta = json.loads(z.read(f"{top}/metadata.json"))
    except zipfile.BadZipFile:
        raise ModelError(f"{path.name}: not a zip file (.argosmodel)") from None
    if meta.get("type", "translate") != "translate" or not meta.get("from_code") or not meta.get("to_code"):
        raise ModelError(f"{path.name}: metadata.json does not describe a translation package")
    return meta


def import_path(settings: Settings, path: Path) -> list[str]:
    """Install an .argosmodel file or every one in a folder (air-gapped venues)."""
    files = sorted(path.glob("*.argosmodel")) if path.is_dir() else [path]
    if not files or not all(f.exists() for f in files):
        raise ModelError(f"no .argosmodel file at {path}")
    metas = [check_package(f) for f in files]  # check all before installing any
    package = _argos(settings)
    done = []
    for f, meta in zip(files, metas, strict=True):
        package.install_from_path(f)
        done.append(f"{meta['from_code']}→{meta['to_code']} {meta.get('package_version', '')}".strip())
    return done


def _index_reachable(url: str, timeout: float = 3.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def install(settings: Settings, codes: list[str]) -> list[str]:
    """Download and install pairs from the Argos package index ("en-ru", or "ru" for en↔ru)."""
    package = _argos(settings)
    from argostranslate import settings as argos_settings

    wanted: set[tuple[str, str]] = set()
    for code in codes:
        if "-" in code:
            a, b = code.split("-", 1)
            wanted.add((a, b))
        else:
            wanted |= {("en", code), (code, "en")}
    if not _index_reachable(argos_settings.remote_package_index):
        raise ModelError(
            "the Argos package index is not reachable (offline?). Copy .argosmodel files from "
            "https://www.argosopentech.com/argospm/index/ on a connected machine and run "
            "'qa-service models import PATH'."
        )
    package.update_package_index()
    available = {(p.from_code, p.to_code): p for p in package.get_available_packages()}
    missing = sorted(wanted - set(available))
    if missing:
        raise ModelError("no package in the index for " + ", ".join(f"{a}→{b}" for a, b in missing))
    done = []
    for key in sorted(wanted):
        package.install_from_path(available[key].download())
        done.append(f"{key[0]}→{key[1]}")
    return done


def coverage(settings: Settings, ctx: Any) -> list[str]:
    """What the loaded event needs that no installed model covers."""
    from sqlmodel import col, select

    from qa_service.db.models import Event, Segment, Speaker, Studio

    pairs = {(p["from"], p["to"]) for p in installed(settings)}
    with ctx.read() as db:
        event = db.exec(select(Event).order_by(Event.id)).first()  # type: ignore[arg-type]
        if event is None:
            return []
        segs = [s.id for s in db.exec(select(Segment).where(Segment.event_id == event.id))]
        speakers = [sp.languages for sp in db.exec(select(Speaker).where(col(Speaker.segment_id).in_(segs)))]
        hosts = [st.host_languages for st in db.exec(select(Studio).where(Studio.event_id == event.id))]
        return uncovered(event.viewer_languages, speakers, event.moderator_language, hosts, pairs)
