"""The test models decode the same on every CPU: this machine runs the int8
kernels of other CPUs (AVX2-only with oneDNN and with MKL, AVX-512 without
VNNI, SSE4.1) and every variant must give exactly the phrase list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workers.cpu_kernels import cpu_info, variants_for

from .conftest import phrases

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).with_name("decode_phrases.py")
MODEL, FLAGS = cpu_info()
VARIANTS = variants_for(FLAGS, MODEL)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_phrase_decodes_exactly_on_these_kernels(argos_dir: Path, variant: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(argos_dir), "auto", "int8_float32", "float32"],
        env=os.environ | VARIANTS[variant],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    rows = phrases()
    # "auto" is what production runs: on x86 it is the int8 path.
    assert result["auto"]["loaded_as"] == ["int8_float32"] or result["auto"]["loaded_as"] == ["int8"]
    assert result["float32"]["loaded_as"] == ["float32"]
    for compute_type, got in result.items():
        assert sorted(got["translations"]) == ["en-de", "en-ru", "es-en", "ru-en"]
        for pair, translations in got["translations"].items():
            dst = pair.split("-")[1]
            src = pair.split("-")[0]
            wrong = [(r[src], t) for r, t in zip(rows, translations, strict=True) if t != r[dst]]
            assert wrong == [], f"{variant}/{compute_type}/{pair}: {wrong}"


def test_variants_cover_an_avx2_only_cpu_when_this_cpu_can_emulate_one() -> None:
    _, flags = cpu_info()
    if "avx2" not in flags:
        pytest.skip("this CPU has no AVX2: only the generic kernels can be checked here")
    assert {"native", "avx2-onednn", "avx2-mkl", "sse41-generic"} <= set(VARIANTS)


def test_cpu_info_reads_model_and_flags(tmp_path: Path) -> None:
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse4_1 avx avx2 fma\n\n")
    model, flags = cpu_info(fake)
    assert model == "AMD EPYC 7B13"
    assert "avx2" in flags and "avx512f" not in flags
    assert "avx512-no-vnni-mkl" not in variants_for(flags, model)
    assert "avx2-onednn" in variants_for(flags, model)
    # MKL keeps its AVX-512 paths for Intel: on an AMD CPU with AVX-512 that variant would repeat AVX2.
    zen4 = flags | {"avx512f", "avx512bw"}
    assert "avx512-no-vnni-mkl" not in variants_for(zen4, "AMD EPYC 9654")
    assert "avx512-no-vnni-mkl" in variants_for(zen4, "Intel(R) Xeon(R) Platinum 8375C")
