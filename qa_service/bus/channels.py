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

import re

MODERATION = "moderation"
SCHEDULE = "schedule"
PUBLIC_CHANNELS = frozenset({SCHEDULE})
STAFF_CHANNELS = frozenset({MODERATION})

_VALID = re.compile(r"^(moderation|schedule|studio:\d+|viewer:[A-Za-z0-9_-]{8,64})$")


def studio(studio_id: int) -> str:
    return f"studio:{studio_id}"


def viewer(viewer_id: str) -> str:
    return f"viewer:{viewer_id}"


def is_valid(name: str) -> bool:
    return bool(_VALID.match(name))


def allowed_for(role: str, *, studio_id: int | None = None, viewer_id: str | None = None) -> frozenset[str]:
    """The channels a socket of ``role`` may subscribe to."""
    if role == "moderator":
        return frozenset({MODERATION, SCHEDULE})
    if role == "host" and studio_id is not None:
        return frozenset({studio(studio_id), SCHEDULE})
    if role == "viewer" and viewer_id is not None:
        return frozenset({viewer(viewer_id), SCHEDULE})
    return frozenset()
