"""Run in a subprocess by test_kernel_variants.py: translate every test phrase
with the real engine under the CPU kernels the environment selects.

    python decode_phrases.py ARGOS_DIR COMPUTE_TYPE...   → one JSON line on stdout
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from workers import argos_env

PHRASES = Path(__file__).resolve().parents[2] / "workers" / "test_models" / "phrases.tsv"


def main() -> None:
    argos_env.configure(Path(sys.argv[1]))
    from workers.engine import ArgosEngine

    with open(PHRASES, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    out: dict[str, dict[str, object]] = {}
    for compute_type in sys.argv[2:]:
        engine = ArgosEngine(compute_type=compute_type)
        engine.preload("all")
        pairs = sorted(engine.pairs)
        out[compute_type] = {
            "loaded_as": sorted({engine.models[p].translator.compute_type for p in pairs}),
            "translations": {f"{s}-{d}": engine.translate_pair(s, d, [r[s] for r in rows]) for s, d in pairs},
        }
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
