"""After the commit: a failing publish or hook skips nothing else and fails nothing."""

from __future__ import annotations

from typing import Any

import redis

from qa_service.services import questions


def test_an_ask_whose_enqueue_fails_is_stored_acknowledged_and_the_other_hooks_run(ctx, event_id, sample) -> None:
    ran: list[int] = []

    def broken(qid: int) -> None:
        raise redis.ConnectionError("Redis went away")

    ctx.on_question_created.extend([broken, ran.append])
    payload: dict[str, Any] = {
        "client_id": "hooks-0001",
        "speaker_id": sample["speakers"]["moscow"][0].id,
        "text": "Do you export to Asia?",
        "language": "en",
    }
    result = questions.ask(ctx, event_id, "viewer-hooks-0001", payload)
    assert result.created
    assert ran == [result.question["id"]]
    assert questions.find_existing(ctx, "viewer-hooks-0001", "hooks-0001") is not None
