"""The translation engine: installed Argos packages, batched CTranslate2 calls.

Loaded once per worker process. ``translate_many`` sends every sentence of
every text of one language pair to CTranslate2 in one ``translate_batch`` call;
a pivot (es→en→ru) is two such calls. Never touches the network: sentences
are split by the package's own MiniSBD model when it ships one, else by
punctuation (a package without one would otherwise download a splitter).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
_SENTENCE_END = re.compile(r"(?<=[.!?。！？؟])\s+")
# How every sentence is decoded (the test-model generator checks its models with the same).
DECODE_OPTIONS: dict[str, Any] = {"beam_size": 4, "num_hypotheses": 1, "length_penalty": 0.2, "replace_unknowns": True}


@dataclass
class PairModel:
    src: str
    dst: str
    package: Any  # argostranslate.package.Package
    version: str
    translator: Any = None  # ctranslate2.Translator, loaded on first use or preload
    splitter: Any = None  # a MiniSBD detector, if the package ships one


class ArgosEngine:
    def __init__(
        self,
        *,
        intra_threads: int = 1,
        inter_threads: int = 1,
        max_batch_size: int = 64,
        compute_type: str = "auto",
    ) -> None:
        self.intra_threads = intra_threads
        self.inter_threads = inter_threads
        self.compute_type = compute_type
        self.max_batch_size = max_batch_size
        self._lock = threading.Lock()
        self.models: dict[tuple[str, str], PairModel] = {}
        self.refresh()

    # ── packages ────────────────────────────────────────────────────────────
    def refresh(self) -> None:
        """Re-read the installed packages (after `models install` / `import`)."""
        from argostranslate import package

        found: dict[tuple[str, str], PairModel] = {}
        for pkg in package.get_installed_packages():
            if getattr(pkg, "type", "translate") != "translate":
                continue
            key = (pkg.from_code, pkg.to_code)
            old = self.models.get(key)
            version = _model_version(pkg)
            if old is not None and old.version == version:
                found[key] = old
            else:
                found[key] = PairModel(pkg.from_code, pkg.to_code, pkg, version)
        self.models = found

    @property
    def pairs(self) -> set[tuple[str, str]]:
        return set(self.models)

    def version(self, src: str, dst: str) -> str:
        return self.models[(src, dst)].version

    def is_test_model(self) -> bool:
        return any("-test#" in m.version for m in self.models.values())

    def preload(self, which: str) -> list[tuple[str, str]]:
        """Load models now ("all", "none", or "en-ru,es-en")."""
        if which == "none":
            return []
        keys = list(self.models) if which == "all" else [tuple(p.split("-", 1)) for p in which.split(",") if p]
        loaded = []
        for key in keys:
            if key in self.models:
                self._load(self.models[key])  # type: ignore[index]
                loaded.append(key)
            else:
                log.warning("preload: no installed model %s", "-".join(key))
        return loaded  # type: ignore[return-value]

    def _load(self, model: PairModel) -> PairModel:
        if model.translator is None:
            import ctranslate2

            with self._lock:
                if model.translator is None:
                    model.translator = ctranslate2.Translator(
                        str(Path(model.package.package_path) / "model"),
                        device="cpu",
                        inter_threads=self.inter_threads,
                        intra_threads=self.intra_threads,
                        compute_type=self.compute_type,
                    )
                    model.splitter = _packaged_splitter(model.package)
        return model

    # ── translation ─────────────────────────────────────────────────────────
    def split(self, model: PairModel, text: str) -> list[str]:
        parts: list[str] = []
        for paragraph in text.split("\n"):
            paragraph = paragraph.strip()
            if not paragraph:
                continue
            if model.splitter is not None:
                parts.extend(s.strip() for s in model.splitter.sentences(paragraph) if s.strip())
            else:
                parts.extend(s for s in _SENTENCE_END.split(paragraph) if s)
        return parts or [text.strip()]

    def translate_pair(self, src: str, dst: str, texts: list[str]) -> list[str]:
        """Translate ``texts`` with the direct model src→dst in ONE CTranslate2 call."""
        if not texts:
            return []
        model = self._load(self.models[(src, dst)])
        tokenizer = model.package.tokenizer
        sentences: list[list[str]] = [self.split(model, t) for t in texts]
        flat = [tokenizer.encode(s) for group in sentences for s in group]
        target_prefix = [[model.package.target_prefix]] * len(flat) if model.package.target_prefix else None
        results = model.translator.translate_batch(
            flat,
            target_prefix=target_prefix,
            max_batch_size=self.max_batch_size,
            **DECODE_OPTIONS,
        )
        decoded = [tokenizer.decode(r.hypotheses[0]).lstrip() for r in results]
        if model.package.target_prefix:
            decoded = [d.removeprefix(model.package.target_prefix).lstrip() for d in decoded]
        out, i = [], 0
        for group in sentences:
            out.append(" ".join(decoded[i : i + len(group)]))
            i += len(group)
        return out

    def translate_route(self, route: list[str], texts: list[str]) -> list[str]:
        """Follow a planned route (direct or pivot), one batched call per leg."""
        for src, dst in zip(route, route[1:], strict=False):
            texts = self.translate_pair(src, dst, texts)
        return texts

    def route_version(self, route: list[str]) -> str:
        return "+".join(self.version(s, d) for s, d in zip(route, route[1:], strict=False))


def _model_version(pkg: Any) -> str:
    """package_version plus a short hash of the model, so a re-trained or
    replaced model never shares cache entries with the old one."""
    model_bin = Path(pkg.package_path) / "model" / "model.bin"
    digest = hashlib.sha256()
    if model_bin.exists():
        with open(model_bin, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return f"{pkg.from_code}-{pkg.to_code}@{getattr(pkg, 'package_version', '?')}#{digest.hexdigest()[:10]}"


def _packaged_splitter(pkg: Any) -> Any:
    folder = Path(pkg.package_path) / "minisbd"
    models = sorted(folder.glob("*.onnx")) if folder.is_dir() else []
    if not models:
        return None
    from minisbd import SBDetect

    return SBDetect(str(models[0]), use_gpu=False, max_threads=1)
