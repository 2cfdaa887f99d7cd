"""What a service call needs: a database session factory and the bus publisher."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
import sqlalchemy.exc
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..bus.redis_bus import SyncPublisher
from ..db.engine import session as new_session
from ..settings import Settings

log = logging.getLogger(__name__)

# Errors that mean "a service we depend on is away", not "this request is wrong":
# callers answer service.unavailable with a retry hint, never server.error.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    redis.RedisError,
    OSError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
)


@dataclass
class Outbox:
    """Events gathered inside a transaction, published only after it committed."""

    items: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    # (event, question) pairs that entered the public feed: their texts in the
    # viewers' languages are queued after the commit (Context.on_feed_entered).
    feed_entered: list[tuple[int, int]] = field(default_factory=list)

    def add(self, event_id: int, channel: str, type_: str, payload: dict[str, Any]) -> None:
        self.items.append((event_id, channel, type_, payload))


@dataclass
class Context:
    settings: Settings
    engine: Engine
    publisher: SyncPublisher
    # Called after a question was committed (the translation enqueuer plugs in here).
    on_question_created: list[Callable[[int], None]] = field(default_factory=list)
    # Called once with every question a group commit stored (questions.ask_many).
    on_questions_created: list[Callable[[list[int]], None]] = field(default_factory=list)
    # Called with (event id, question ids) that entered the public feed (the feed translator plugs in here).
    on_feed_entered: list[Callable[[int, list[int]], None]] = field(default_factory=list)
    read_engine: Engine | None = None  # for read(); default: the engine

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work (snapshots, look-ups): publishes nothing and,
        on SQLite, never waits for the write lock."""
        with new_session(self.read_engine or self.engine) as db:
            yield db  # closing the session ends (rolls back) its transaction

    @contextmanager
    def transaction(self) -> Iterator[tuple[Session, Outbox]]:
        """Run a unit of work; on commit, publish its events in order."""
        outbox = Outbox()
        with new_session(self.engine) as db:
            yield db, outbox
            db.commit()
        # Committed is committed: the change stands whatever happens below. Each
        # publish and each hook is tried on its own, so one failure skips nothing
        # else; a failed publish marks its channel stale (announced when Redis is
        # back: its clients resync), a failed enqueue is found by a worker sweep.
        errors = self.publisher.publish_many(outbox.items) if outbox.items else []
        if errors:
            log.warning(
                "change committed but %d event(s) not published (%s); clients will resync", len(errors), errors[-1]
            )
        hooks = list(outbox.after_commit)
        entered: dict[int, list[int]] = {}
        for event_id, question_id in outbox.feed_entered:
            entered.setdefault(event_id, []).append(question_id)
        for event_id, ids in entered.items():
            hooks += [functools.partial(hook, event_id, ids) for hook in self.on_feed_entered]
        self.run_hooks(hooks)

    @staticmethod
    def run_hooks(hooks: list[Callable[[], None]]) -> None:
        """After-commit steps, each on its own: one failing skips none of the others,
        and none turns a committed change into an error for the caller."""
        for hook in hooks:
            try:
                hook()
            except (redis.RedisError, OSError) as exc:
                log.warning("after-commit step failed (%s); it is retried by a sweep", exc)
