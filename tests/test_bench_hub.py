"""`qa-service bench-hub` for real, at tiny sizes: every figure asked for comes with a
number for the hub and for its bare baselines, and the burst greets every socket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .support import SECOND

pytestmark = pytest.mark.integration


def number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def test_bench_hub_quick_a_b_c(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "qa_service.cli", "bench-hub", "--quick", "--only", "a,b,c", "--database", "sqlite"]
    cmd += ["--burst", "50", "--viewers", "80", "--askers", "5,10", "--duration", "3", "--settle", "0.5"]
    cmd += ["--work-dir", str(tmp_path / "work"), "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_") or k == "QA_BENCH_PORTS"}
    env["QA_DATA_DIR"] = str(tmp_path / "cli-data")  # the CLI's own (unused) data directory
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=170 * SECOND)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    result = json.loads(out.read_text())
    assert result["errors"] == {}
    figures = result["figures"]

    for sockets in ("50", "80"):
        point = figures["a_rss_per_socket"][sockets]
        for who in ("hub", "bare_starlette", "bare_websockets"):
            assert point[who]["sockets"] == int(sockets), (who, point)
            assert number(point[who]["kib_per_socket"]), (who, point)
        assert number(point["ratio_vs_starlette"]) and number(point["ratio_vs_websockets"])

    burst = figures["b_connect_burst"]
    for who in ("hub", "bare_starlette", "bare_websockets"):
        assert burst[who]["greeted"] == 50 and burst[who]["errors"] == 0, (who, burst[who])
        assert number(burst[who]["rate_per_s"]) and number(burst[who]["latency"]["p99_ms"])
    assert number(burst["ratio_rate_vs_starlette"]) and number(burst["ratio_rate_vs_websockets"])
    assert all(not errors for errors in figures["errors_while_open"].values()), figures["errors_while_open"]

    for askers in ("5", "10"):
        point = figures["c_ingest"]["sqlite"][askers]
        for who in ("hub", "bare_starlette"):
            assert point[who]["acked"] > 0 and point[who]["errors"] == 0, (who, point[who])
            assert number(point[who]["acks_per_s"]) and number(point[who]["latency"]["p99_ms"])
            assert number(point[who]["cpu_ms_per_question"])
        assert number(point["ratio_acks_per_s"]) and number(point["ratio_p99"])

    assert "| a. RSS per idle socket at 50 sockets (KiB) |" in done.stdout  # the Markdown table
