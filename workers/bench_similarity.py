"""How well "similar questions" works, and what it costs: precision and recall on the
labelled pairs the tests ship, translated by the real test models; µs per comparison.

    python -m workers.bench_similarity [--out loadtests/results/similarity.json]

Run from a source checkout (the pairs live in tests/data/similar_pairs.tsv). Each side
of a pair is translated as the worker would store it for an event whose moderators
read ``ru`` (the sample event) and, again, ``de``: into the moderators' language and
into English wherever an installed route leads there (planner.path: direct, or through
English), then the pair is scored by qa_service.domain.similarity in the language the
service would pick. A pair with no language in common (a German question when the
moderators read Russian: the test models have no de→en) scores 0, so it counts as
"not similar": a miss when the pair is the same question. The test models run in a
throw-away directory, whatever QA_ARGOS_DIR holds: the pairs are made of their phrases.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qa_service.domain import similarity

from .planner import path

PAIRS = Path(__file__).resolve().parents[1] / "tests" / "data" / "similar_pairs.tsv"
MODERATOR_LANGUAGES = ("ru", "de")
OUT = Path("loadtests/results/similarity.json")


@dataclass(frozen=True)
class Pair:
    lang_a: str
    text_a: str
    lang_b: str
    text_b: str
    same: bool
    kind: str


def load_pairs(file: Path = PAIRS) -> list[Pair]:
    with open(file, encoding="utf-8") as f:
        rows = list(csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t"))
    pairs = []
    for r in rows:
        if r["label"] not in ("same", "different"):
            raise ValueError(f"{file}: label must be same or different, not {r['label']!r}")
        pairs.append(Pair(r["lang_a"], r["text_a"], r["lang_b"], r["text_b"], r["label"] == "same", r["kind"]))
    return pairs


def stored_texts(engine: Any, questions: list[tuple[str, str]], moderator_language: str) -> list[dict[str, str]]:
    """Each (language, text) with what the worker would store: the original, and its
    translations into the moderators' language and English where a route exists.
    One batched engine call per route."""
    out: list[dict[str, str]] = [{lang: text} for lang, text in questions]
    todo: dict[tuple[str, ...], list[tuple[int, str, str]]] = defaultdict(list)
    for i, (lang, text) in enumerate(questions):
        for target in dict.fromkeys((moderator_language, similarity.PIVOT)):
            route = path(lang, target, engine.pairs)
            if route and len(route) > 1:
                todo[tuple(route)].append((i, target, text))
    for legs, items in todo.items():
        for (i, target, _), value in zip(
            items, engine.translate_route(list(legs), [t for _, _, t in items]), strict=True
        ):
            out[i][target] = value
    return out


def evaluate(pairs: list[Pair], engine: Any, moderator_language: str) -> dict[str, Any]:
    """Precision and recall at similarity.THRESHOLD, with every mistake listed."""
    sides = stored_texts(
        engine, [(p.lang_a, p.text_a) for p in pairs] + [(p.lang_b, p.text_b) for p in pairs], moderator_language
    )
    n = len(pairs)
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    by_kind: dict[str, dict[str, int]] = defaultdict(lambda: {"pairs": 0, "judged_similar": 0})
    mistakes, scored, no_common = [], [], 0
    for p, a, b in zip(pairs, sides[:n], sides[n:], strict=True):
        lang = similarity.common_language(b, a, moderator_language, p.lang_b)
        s = similarity.compare(b, a, moderator_language, own_language=p.lang_b)  # b arrives after a
        no_common += lang is None
        similar = s >= similarity.THRESHOLD
        counts[
            {(True, True): "tp", (True, False): "fp", (False, True): "fn", (False, False): "tn"}[(similar, p.same)]
        ] += 1
        by_kind[p.kind]["pairs"] += 1
        by_kind[p.kind]["judged_similar"] += similar
        scored.append((s, p.same))
        if similar != p.same:
            mistakes.append(
                {"label": "same" if p.same else "different", "kind": p.kind, "score": round(s, 3), "language": lang,
                 "a": p.text_a, "b": p.text_b, "compared": [a.get(lang or ""), b.get(lang or "")]}
            )  # fmt: skip
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    return {
        "moderator_language": moderator_language,
        "pairs": n,
        "same": sum(p.same for p in pairs),
        "different": sum(not p.same for p in pairs),
        "no_common_language": no_common,
        **counts,
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / (tp + fn), 4) if tp + fn else None,
        "highest_different": round(max((s for s, same in scored if not same), default=0.0), 3),
        "lowest_same_found": round(
            min((s for s, same in scored if same and s >= similarity.THRESHOLD), default=0.0), 3
        ),
        "by_kind": dict(by_kind),
        "mistakes": mistakes,
    }


def cost(
    sides: list[dict[str, str]], moderator_language: str, candidates: int = 500, rounds: int = 20
) -> dict[str, Any]:
    """µs per comparison, and ms per new question against ``candidates`` open ones
    (texts from the labelled set, cycled), with the normalisation cache cold and warm;
    also the worst case: every candidate passes the quick filter (all read like the new one)."""
    pool = [similarity.Candidate(i + 1, sides[i % len(sides)]) for i in range(candidates)]
    news = sides[: min(len(sides), 40)]
    alike = [similarity.Candidate(i + 1, news[0]) for i in range(candidates)]

    def run(cands: list[similarity.Candidate], asked: list[dict[str, str]], cold: bool) -> float:
        started = time.perf_counter()
        for _ in range(rounds):
            for new in asked:
                if cold:
                    similarity.normalise.cache_clear()
                similarity.most_similar(new, cands, moderator_language)
        return (time.perf_counter() - started) / (rounds * len(asked))

    warm, cold, worst = run(pool, news, False), run(pool, news, True), run(alike, news[:1], False)
    return {
        "candidates": candidates,
        "per_question_ms_warm": round(warm * 1000, 3),
        "per_question_ms_cold": round(cold * 1000, 3),
        "per_question_ms_all_alike": round(worst * 1000, 3),
        "per_comparison_us_warm": round(warm / candidates * 1e6, 2),
        "per_comparison_us_cold": round(cold / candidates * 1e6, 2),
        "per_comparison_us_all_alike": round(worst / candidates * 1e6, 2),
    }


def run_all(engine: Any, pairs: list[Pair]) -> dict[str, Any]:
    results: dict[str, Any] = {"threshold": similarity.THRESHOLD, "by_moderator_language": {}}
    for lang in MODERATOR_LANGUAGES:
        results["by_moderator_language"][lang] = evaluate(pairs, engine, lang)
    sides = stored_texts(engine, [(p.lang_a, p.text_a) for p in pairs] + [(p.lang_b, p.text_b) for p in pairs], "ru")
    results["cost"] = cost(sides, "ru")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.bench_similarity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    from qa_service.settings import Settings

    from . import argos_env, models

    with tempfile.TemporaryDirectory(prefix="qa-similarity-") as tmp:
        root = Path(tmp)
        argos_env.configure(root)
        models.import_path(Settings(data_dir=root, argos_dir=root), models.TEST_MODELS)
        from .engine import ArgosEngine

        engine = ArgosEngine()
        pairs = load_pairs()
        results: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
            "pairs_file": str(PAIRS.relative_to(PAIRS.parents[2])),
            "models": sorted(f"{s}-{d}" for s, d in engine.pairs),
            **run_all(engine, pairs),
        }
    for lang, r in results["by_moderator_language"].items():
        print(
            f"moderators read {lang}: precision {r['precision']} recall {r['recall']} "
            f"(tp {r['tp']} fp {r['fp']} fn {r['fn']} tn {r['tn']}; no common language {r['no_common_language']})"
        )
    print("cost:", results["cost"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
