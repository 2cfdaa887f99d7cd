"""Who may see what, named in one place.

Channels (all scoped to one event):

* ``moderation``     every question event, pending ones included. Staff only.
* ``studio:<id>``    a studio's host queue: only questions a host may see
                     (queued, on air, answered) and their removal. Host link.
* ``viewer:<vid>``   one anonymous viewer's own questions. That viewer only.
* ``schedule``       segment status changes (who is on air). Public.
* ``feed``           the public feed: approved questions (original text, status,
                     votes), not hidden by a moderator. Public.
* ``feed:<lang>``    the feed's texts in one language (translations). Public;
                     a viewer listens to the one of the language it reads.

A pending question is published to ``moderation`` and to its asker's own
``viewer:`` channel, never to ``studio:``, ``schedule`` or ``feed``.
"""

from __future__ import annotations

MODERATION = "moderation"
VIEWER_PREFIX = "viewer:"
SCHEDULE = "schedule"
FEED = "feed"
FEED_TEXTS_PREFIX = "feed:"


def studio(studio_id: int) -> str:
    return f"studio:{studio_id}"


def viewer(viewer_id: str) -> str:
    return f"{VIEWER_PREFIX}{viewer_id}"


def feed_texts(language: str) -> str:
    return f"{FEED_TEXTS_PREFIX}{language}"


def for_moderator() -> list[str]:
    return [MODERATION, SCHEDULE]


def for_host(studio_id: int) -> list[str]:
    return [studio(studio_id), SCHEDULE]


def for_viewer(viewer_id: str, language: str | None = None) -> list[str]:
    feed = [FEED, feed_texts(language)] if language else [FEED]
    return [viewer(viewer_id), SCHEDULE, *feed]
