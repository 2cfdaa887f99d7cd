"""`qa-service bench-feed` for real, at its smallest: every viewer gets each approved
question's feed.upsert, the feed is translated where a model reaches and not where none
does, the baseline (a question hidden from the feed) costs the feed nothing, and votes
come out coalesced. Shapes and counts only: no wall-clock thresholds."""

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


def test_bench_feed_quick(tmp_path: Path) -> None:
    out = tmp_path / "bench-feed.json"
    cmd = [sys.executable, "-m", "qa_service.cli", "bench-feed", "--quick", "--viewers", "30", "--questions", "4"]
    cmd += ["--voters", "20", "--work-dir", str(tmp_path / "work"), "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_") or k == "QA_BENCH_PORTS"}
    env["QA_DATA_DIR"] = str(tmp_path / "cli-data")  # the CLI's own (unused) data directory
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=170 * SECOND)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    result = json.loads(out.read_text())
    assert result["errors"] == {}
    assert "hidden from the feed" in result["baseline"]
    fig = result["figures"]["sqlite"]
    assert fig["viewers"]["greeted"] == 30 and fig["viewers_open_at_end"] == 30
    assert fig["viewer_errors"] == {}

    approvals = fig["approvals"]
    base, feed = approvals["baseline"], approvals["feed"]
    assert base["approvals"] == feed["approvals"] == 2 and base["complete"] == feed["complete"] == 2
    assert approvals["every_viewer_got_every_upsert"] is True
    assert approvals["baseline_viewers_got_upsert"] == 0
    for key, value in feed["per_question"].items():
        assert number(value), key
        assert number(base["per_question"][key]), key
        assert number(approvals["added_by_feed_per_question"][key]), key

    # The feed's events: one upsert per question to everyone; none for the hidden baseline.
    assert feed["published_by_kind"]["feed feed.upsert"]["events"] == 1
    assert not any(k.startswith("feed") for k in base["published_by_kind"])
    assert base["published_by_kind"]["moderation question.updated"]["events"] >= 1
    assert feed["per_question"]["messages_delivered"] >= 30  # an upsert to each viewer at least
    assert base["per_question"]["messages_delivered"] == 0 and base["per_question"]["translations"] == 0

    # Translations: the test models reach de from both es and en (through English), never zh.
    by_source = feed["translations_per_question_by_source"]
    assert by_source["es"].get("de:argos", 0) > 0 and by_source["en"].get("de:argos", 0) > 0
    assert by_source["es"].get("zh:argos", 0) == 0 and by_source["en"].get("zh:argos", 0) == 0
    assert feed["feed_jobs"]["jobs"] == 2 and feed["feed_jobs"]["translated"] > 0
    assert base["feed_jobs"]["jobs"] == 0

    latency = approvals["latency_approve_to_viewer"]
    assert latency["feed.upsert (every viewer)"]["n"] == 2 * 30
    assert (
        latency["asked in es"]["de"]["reads"] == "a translation" and latency["asked in es"]["de"]["feed.text"]["n"] == 6
    )
    assert (
        latency["asked in es"]["zh"]["reads"] == "the original" and latency["asked in es"]["zh"]["feed.text"]["n"] == 0
    )

    # Votes: every vote counted, far fewer events than votes, the final count seen by viewers.
    votes = fig["votes"]
    assert votes["votes_acked"] == 20 and votes["vote_errors"] == {}
    assert votes["final_count_seen"] == 20
    assert 1 <= votes["published"]["feed votes.changed"]["events"] < 20
    assert votes["delivered_votes_changed"] >= 30
    assert number(votes["hub_cpu_ms_per_vote"])

    assert "| per approved question | baseline (hidden from feed) | feed | added by the feed |" in done.stdout
