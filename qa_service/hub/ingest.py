"""Group commit for asks: questions that arrive while a commit is under way wait
for the next one and share it (one transaction, one fsync, one round trip of
events). A lone question is committed at once: no timer, no added wait.

Every asker's reply is sent after the commit that stored its question
(questions.ask_many), so an acknowledged question is in the database."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..domain.errors import DomainError
from ..services import questions
from ..services.context import OUTAGE_ERRORS
from ..services.questions import AskRequest, AskResult

if TYPE_CHECKING:
    from .hub import Hub

log = logging.getLogger(__name__)
MAX_GROUP = 256  # questions in one transaction at most


class AskGroups:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._waiting: list[tuple[int, AskRequest, asyncio.Future[AskResult]]] = []
        self._committer: asyncio.Task[None] | None = None
        self.groups = 0  # commits made (for the bench and tests)
        self.largest = 0

    async def ask(self, event_id: int, request: AskRequest) -> AskResult:
        """Store a question (with whatever others wait now); raises its DomainError."""
        future: asyncio.Future[AskResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((event_id, request, future))
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_all(), name="ask-groups")
        return await future

    async def _commit_all(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
                by_event: dict[int, list[tuple[AskRequest, asyncio.Future[AskResult]]]] = {}
                for event_id, request, future in group:
                    by_event.setdefault(event_id, []).append((request, future))
                for event_id, items in by_event.items():
                    await self._commit(event_id, items)
        finally:
            self._committer = None

    async def _commit(self, event_id: int, items: list[tuple[AskRequest, asyncio.Future[AskResult]]]) -> None:
        self.groups += 1
        self.largest = max(self.largest, len(items))
        try:
            results = await self.hub.run(questions.ask_many, self.hub.ctx, event_id, [r for r, _f in items])
            if len(results) != len(items):
                raise RuntimeError(f"ask_many answered {len(results)} of {len(items)} questions")
        except Exception as exc:  # the database or Redis is away (or a bug): every asker of the group hears it
            if not isinstance(exc, DomainError) and not isinstance(exc, OUTAGE_ERRORS):
                log.exception("a group of %d questions failed", len(items))
            for _r, future in items:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_r, future), result in zip(items, results, strict=True):
            if future.done():  # the asker's socket went away meanwhile; its question is stored all the same
                continue
            if isinstance(result, DomainError):
                future.set_exception(result)
            else:
                future.set_result(result)
