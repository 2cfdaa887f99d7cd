"""The programme edited live by admins over REST (services/event_admin.py does the work).
Moderators get 403; writes need the X-CSRF-Token header like every other write."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..services import event_admin
from .common import hub_of, json_body, path_int, staff

ADMINS = ("admin",)


async def event(request: Request) -> JSONResponse:
    """
    summary: The event's programme for the admin page
    responses:
      200: the public programme, its version, the event's time zone and the questions per record
    """
    await staff(request, *ADMINS)
    hub = hub_of(request)
    return JSONResponse(await hub.run(event_admin.admin_view, hub.ctx, await hub.event_id()))


async def _create(request: Request, fn: Callable[..., dict[str, Any]]) -> JSONResponse:
    user = await staff(request, *ADMINS)
    hub = hub_of(request)
    data = await json_body(request)
    return JSONResponse(await hub.run(fn, hub.ctx, await hub.event_id(), data, user.username))


async def _update(request: Request, fn: Callable[..., dict[str, Any]], key: str) -> JSONResponse:
    user = await staff(request, *ADMINS)
    hub = hub_of(request)
    data = await json_body(request)
    return JSONResponse(await hub.run(fn, hub.ctx, await hub.event_id(), path_int(request, key), data, user.username))


async def _delete(request: Request, fn: Callable[..., dict[str, Any]], key: str) -> JSONResponse:
    user = await staff(request, *ADMINS)
    hub = hub_of(request)
    return JSONResponse(await hub.run(fn, hub.ctx, await hub.event_id(), path_int(request, key), user.username))


async def create_studio(request: Request) -> JSONResponse:
    """
    summary: Add a studio
    responses:
      200: the studio
    """
    return await _create(request, event_admin.create_studio)


async def update_studio(request: Request) -> JSONResponse:
    """
    summary: Change a studio
    responses:
      200: the studio
    """
    return await _update(request, event_admin.update_studio, "studio_id")


async def delete_studio(request: Request) -> JSONResponse:
    """
    summary: Delete a studio nobody asked a question in, with its segments and speakers
    responses:
      200: {deleted}
    """
    return await _delete(request, event_admin.delete_studio, "studio_id")


async def create_segment(request: Request) -> JSONResponse:
    """
    summary: Add a segment
    responses:
      200: the segment
    """
    return await _create(request, event_admin.create_segment)


async def update_segment(request: Request) -> JSONResponse:
    """
    summary: Change a segment
    responses:
      200: the segment
    """
    return await _update(request, event_admin.update_segment, "segment_id")


async def delete_segment(request: Request) -> JSONResponse:
    """
    summary: Delete a segment nobody asked a question in, with its speakers
    responses:
      200: {deleted}
    """
    return await _delete(request, event_admin.delete_segment, "segment_id")


async def create_speaker(request: Request) -> JSONResponse:
    """
    summary: Add a speaker to a segment
    responses:
      200: the speaker
    """
    return await _create(request, event_admin.create_speaker)


async def update_speaker(request: Request) -> JSONResponse:
    """
    summary: Change a speaker, or move them to another segment
    responses:
      200: the speaker
    """
    return await _update(request, event_admin.update_speaker, "speaker_id")


async def delete_speaker(request: Request) -> JSONResponse:
    """
    summary: Delete a speaker nobody asked a question
    responses:
      200: {deleted}
    """
    return await _delete(request, event_admin.delete_speaker, "speaker_id")


def _put_or_delete(put: Any, delete: Any) -> Any:
    """One route per path (Starlette answers 405 with the Allow of the first route that
    matches the path: two routes of one path would name only one method)."""

    async def handler(request: Request) -> JSONResponse:
        return await (put if request.method == "PUT" else delete)(request)  # type: ignore[no-any-return]

    return handler


studio_item = _put_or_delete(update_studio, delete_studio)
segment_item = _put_or_delete(update_segment, delete_segment)
speaker_item = _put_or_delete(update_speaker, delete_speaker)
