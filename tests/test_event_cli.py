"""`qa-service event export` and `event load` over a running event, run as a user would."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from qa_service.bus import channels
from qa_service.db.models import ModerationAction

from .services.support import stream
from .test_cli import run

pytestmark = pytest.mark.integration


def test_export_edit_and_load_again_announces_the_change(settings, ctx, event_id, tmp_path: Path) -> None:
    out = tmp_path / "event.yaml"
    exported = run(settings, "event", "export", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    text = out.read_text(encoding="utf-8")
    assert text == run(settings, "event", "export").stdout  # the same to standard output
    changed = text.replace("title: Chief Engineer", "title: Chief Robotics Engineer")
    assert changed != text
    out.write_text(changed, encoding="utf-8")
    env = {"QA_REDIS_URL": settings.redis_url or "", "QA_REDIS_PREFIX": settings.redis_prefix}
    loaded = run(settings, "event", "load", str(out), **env)
    assert loaded.returncode == 0, loaded.stderr
    with ctx.read() as db:
        rows = db.exec(select(ModerationAction).where(ModerationAction.action.startswith("event."))).all()  # type: ignore[union-attr]
    assert [(r.actor, r.action) for r in rows] == [("cli:event-load", "event.speaker_update")]
    (event,) = stream(ctx, event_id, channels.SCHEDULE, "schedule.updated")
    assert "Chief Robotics Engineer" in {s["title"] for s in event["speakers"]}
    # Loading the same file again changes nothing and says nothing.
    assert run(settings, "event", "load", str(out), **env).returncode == 0
    assert len(stream(ctx, event_id, channels.SCHEDULE, "schedule.updated")) == 1
    assert run(settings, "event", "export").stdout == changed


def test_export_without_an_event_fails_loudly(settings) -> None:
    assert run(settings, "db", "upgrade").returncode == 0
    result = run(settings, "event", "export")
    assert result.returncode == 2 and "no event is loaded" in result.stderr
