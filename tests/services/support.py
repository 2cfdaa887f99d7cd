"""Helpers for the service tests: questions asked and queued through the services."""

from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from qa_service.bus.redis_bus import Keys, topic
from qa_service.db.models import Question
from qa_service.services import questions
from qa_service.services.context import Context


def ask(ctx: Context, event_id: int, speaker_id: int, text: str = "A question?", viewer: str = "viewer-0001") -> int:
    payload = {"client_id": uuid.uuid4().hex, "speaker_id": speaker_id, "text": text, "language": "en"}
    return int(questions.ask(ctx, event_id, viewer, payload).question["id"])


def queued(ctx: Context, event_id: int, speaker_id: int, n: int) -> list[int]:
    """``n`` new questions to ``speaker_id``, approved into their studio's queue."""
    ids = [ask(ctx, event_id, speaker_id, f"Question {i}?") for i in range(n)]
    for qid in ids:
        questions.moderate(ctx, event_id, qid, "approve", "mod1", expected_version=1)
    return ids


def statuses(ctx: Context, studio_id: int) -> dict[int, str]:
    with ctx.read() as db:
        return {q.id: q.status for q in db.exec(select(Question).where(Question.studio_id == studio_id)) if q.id}


def on_air_counts(ctx: Context) -> dict[int, int]:
    """Questions on air per studio, straight from the table."""
    with ctx.read() as db:
        rows = db.exec(
            sa.select(Question.studio_id, sa.func.count())
            .where(Question.status == "on_air")
            .group_by(Question.studio_id)  # type: ignore[call-overload]
        ).all()
    return {studio_id: count for studio_id, count in rows}


def stream(ctx: Context, event_id: int, channel: str, type_: str) -> list[dict[str, Any]]:
    """The payloads of ``type_`` events on a channel, in publish order (the Redis stream)."""
    key = Keys(ctx.settings.redis_prefix).stream(topic(event_id, channel))
    events = [json.loads(fields[b"d"]) for _id, fields in ctx.publisher.client.xrange(key)]
    return [e["payload"] for e in events if e["type"] == type_]
