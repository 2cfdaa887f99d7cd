"""Translation throughput of one worker process: batched against one-by-one.

    qa-service bench [--questions 200] [--out loadtests/results/bench-translate.json]

Runs on whatever Argos packages are installed under QA_ARGOS_DIR (default
QA_DATA_DIR/argos); with none installed it installs the project's small test
models first. With a real pack installed (`qa-service models install ru`), set
QA_BENCH_PAIR=en-ru and the texts to use with QA_BENCH_TEXTS=FILE (one per line).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qa_service.settings import Settings

PHRASES = Path(__file__).resolve().parent / "test_models" / "phrases.tsv"


def _texts(src: str, n: int) -> list[str]:
    custom = os.environ.get("QA_BENCH_TEXTS")
    if custom:
        base = [line.strip() for line in Path(custom).read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        import csv

        with open(PHRASES, encoding="utf-8") as f:
            base = [row[src] for row in csv.DictReader(f, delimiter="\t")]
    return [base[i % len(base)] for i in range(n)]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(latencies: list[float], wall: float, n: int) -> dict[str, float]:
    return {
        "questions_per_second": round(n / wall, 1),
        "latency_p50_ms": round(_pct(latencies, 0.50) * 1000, 2),
        "latency_p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
        "wall_seconds": round(wall, 3),
    }


def run_engine(engine: Any, src: str, dst: str, texts: list[str], batch: int) -> dict[str, float]:
    """Throughput over all texts; a question's latency is the duration of the
    CTranslate2 call that carried it (what a question waits once picked up)."""
    latencies: list[float] = []
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        chunk = texts[i : i + batch]
        t0 = time.perf_counter()
        engine.translate_pair(src, dst, chunk)
        latencies.extend([time.perf_counter() - t0] * len(chunk))
    wall = time.perf_counter() - start
    return _summary(latencies, wall, len(texts))


def main(settings: Settings, *, out: Path, questions: int) -> int:
    from workers import argos_env, models
    from workers.runtime import argos_root

    root = Path(argos_root(settings))
    if not models.installed(settings):
        models.import_path(settings, models.TEST_MODELS)
    src, dst = os.environ.get("QA_BENCH_PAIR", "en-ru").split("-", 1)
    texts = _texts(src, questions)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "pair": f"{src}-{dst}",
        "compute_type": settings.translate_compute_type,
        "questions": questions,
        "argos_dir": str(root),
        "runs": {},
    }
    from workers.engine import ArgosEngine

    assert argos_env.configured_root() == root.resolve()
    for threads in (1, 2):
        engine = ArgosEngine(intra_threads=threads, compute_type=settings.translate_compute_type)
        results["test_model"] = engine.is_test_model()
        results["model_version"] = engine.version(src, dst)
        engine.preload(f"{src}-{dst}")
        engine.translate_pair(src, dst, texts[:8])  # warm up
        for batch in (1, 8, 32):
            key = f"threads={threads},batch={batch}"
            results["runs"][key] = run_engine(engine, src, dst, texts, batch)
            print(key, results["runs"][key], flush=True)
    one = results["runs"]["threads=1,batch=1"]["questions_per_second"]
    best = max(results["runs"].items(), key=lambda kv: kv[1]["questions_per_second"])
    results["best"] = {
        "run": best[0],
        "speedup_vs_one_by_one_1_thread": round(best[1]["questions_per_second"] / one, 2),
    }
    results["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0
