"""Group commit for viewers' writes (asks and votes): requests that arrive while a
commit is under way wait for the next one and share it (one transaction, one fsync,
one round trip of events). A lone request is committed at once: no timer, no added wait.

Every reply is sent after the commit that stored its request (questions.ask_many,
feed.vote_many), so an acknowledged question or vote is in the database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..domain.errors import DomainError
from ..services import feed, questions
from ..services.context import OUTAGE_ERRORS, Context
from ..services.feed import VoteRequest
from ..services.questions import AskRequest, AskResult

if TYPE_CHECKING:
    from .hub import Hub

log = logging.getLogger(__name__)
MAX_GROUP = 256  # requests in one transaction at most
R = TypeVar("R")  # a request
T = TypeVar("T")  # its result
# Stores a group of requests of one event in one transaction: a result or a DomainError each, in order.
Many = Callable[[Context, int, list[R]], list[T | DomainError]]


class GroupCommit(Generic[R, T]):
    def __init__(self, hub: Hub, many: Many[R, T], name: str) -> None:
        self.hub = hub
        self.many = many
        self.name = name
        self._waiting: list[tuple[int, R, asyncio.Future[T]]] = []
        self._committer: asyncio.Task[None] | None = None
        self.groups = 0  # commits made (for the bench and tests)
        self.largest = 0

    async def submit(self, event_id: int, request: R) -> T:
        """Store one request (with whatever others wait now); raises its DomainError."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((event_id, request, future))
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_all(), name=self.name)
        return await future

    async def _commit_all(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
                by_event: dict[int, list[tuple[R, asyncio.Future[T]]]] = {}
                for event_id, request, future in group:
                    by_event.setdefault(event_id, []).append((request, future))
                for event_id, items in by_event.items():
                    await self._commit(event_id, items)
        finally:
            self._committer = None

    async def _commit(self, event_id: int, items: list[tuple[R, asyncio.Future[T]]]) -> None:
        self.groups += 1
        self.largest = max(self.largest, len(items))
        try:
            results = await self.hub.run(self.many, self.hub.ctx, event_id, [r for r, _f in items])
            if len(results) != len(items):
                raise RuntimeError(f"{self.name} answered {len(results)} of {len(items)} requests")
        except Exception as exc:  # the database or Redis is away (or a bug): every requester of the group hears it
            if not isinstance(exc, DomainError) and not isinstance(exc, OUTAGE_ERRORS):
                log.exception("a group of %d requests (%s) failed", len(items), self.name)
            for _r, future in items:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_r, future), result in zip(items, results, strict=True):
            if future.done():  # the requester's socket went away meanwhile; its request is stored all the same
                continue
            if isinstance(result, DomainError):
                future.set_exception(result)
            else:
                future.set_result(result)


class AskGroups(GroupCommit[AskRequest, AskResult]):
    """Viewers' questions, stored by questions.ask_many."""

    def __init__(self, hub: Hub) -> None:
        super().__init__(hub, questions.ask_many, "ask-groups")

    async def ask(self, event_id: int, request: AskRequest) -> AskResult:
        return await self.submit(event_id, request)


class VoteGroups(GroupCommit[VoteRequest, dict[str, Any]]):
    """Viewers' votes, stored by feed.vote_many."""

    def __init__(self, hub: Hub) -> None:
        super().__init__(hub, feed.vote_many, "vote-groups")

    async def vote(self, event_id: int, request: VoteRequest) -> dict[str, Any]:
        return await self.submit(event_id, request)
