"""Who may see what, named in one place.

Channels (all scoped to one event):

* ``moderation``     every question event, pending ones included. Staff only.
* ``studio:<id>``    a studio's host queue: only questions a host may see
                     (queued, on air, answered) and their removal. Host link.
* ``viewer:<vid>``   one anonymous viewer's own questions. That viewer only.
* ``schedule``       segment status changes (who is on air). Public.

A pending question is published to ``moderation`` and to its asker's own
``viewer:`` channel, never to ``studio:`` or ``schedule``.
"""

from __future__ import annotations

MODERATION = "moderation"
VIEWER_PREFIX = "viewer:"
SCHEDULE = "schedule"


def studio(studio_id: int) -> str:
    return f"studio:{studio_id}"


def viewer(viewer_id: str) -> str:
    return f"{VIEWER_PREFIX}{viewer_id}"


def for_moderator() -> list[str]:
    return [MODERATION, SCHEDULE]


def for_host(studio_id: int) -> list[str]:
    return [studio(studio_id), SCHEDULE]


def for_viewer(viewer_id: str) -> list[str]:
    return [viewer(viewer_id), SCHEDULE]
