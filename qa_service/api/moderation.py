"""Moderation actions and snapshots over REST (staff only)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..db.models import ModerationAction
from ..domain.errors import DomainError, NotFound
from ..domain.validation import MAX_INDEX, check_id, clean_text, parse_int
from ..hub.hub import Hub
from ..services import questions, schedule, snapshots
from ..services.views import iso
from .common import bool_field, hub_of, int_field, json_body, optional_text, path_int, staff

MODERATORS = ("moderator", "admin")
AUDIT_MAX = 1000  # rows of the audit log per request
MAX_ADDRESS_BAN_MINUTES = 43_200  # 30 days


async def snapshot(request: Request) -> JSONResponse:
    """
    summary: Everything a moderator console starts from
    responses:
      200: {schedule, questions}
    """
    await staff(request, *MODERATORS)
    hub = hub_of(request)
    return JSONResponse(await hub.run(snapshots.moderator, hub.ctx, await hub.event_id()))


async def _question_request(request: Request) -> tuple[Hub, str, dict[str, Any], int, int]:
    """What every question endpoint needs: a moderator, the body, the event and question ids."""
    user = await staff(request, *MODERATORS)
    hub = hub_of(request)
    data = await json_body(request)
    return hub, user.username, data, await hub.event_id(), path_int(request, "question_id")


async def question_action(request: Request) -> JSONResponse:
    """
    summary: Apply a life-cycle action to a question
    description: >
      action is one of approve, enqueue, dequeue, on_air, skip, answer, reject,
      reopen, merge. Body {version, reason?, into?, enqueue?}; a stale version
      gives 409 question.stale_version. on_air takes a queued question, or an
      approved one (queued, then put on air: one request, one undo); either way the
      studio's current on-air question becomes answered. enqueue puts an approved
      question back at the end of its studio's queue.
    responses:
      200: the question (moderator view)
      400: question.illegal_transition, question.reason_required
      409: question.stale_version, studio.on_air_taken, question.merge_other_studio
    """
    hub, actor, data, event_id, qid = await _question_request(request)
    result = await hub.run(
        questions.moderate,
        hub.ctx,
        event_id,
        qid,
        request.path_params["action"],
        actor,
        expected_version=int_field(data, "version"),
        reason=clean_text(optional_text(data, "reason"), field="reason", max_chars=200, required=False),
        merged_into=int_field(data, "into", required=False),
        enqueue=bool_field(data, "enqueue", default=True),
        from_approved=True,
    )
    return JSONResponse(result)


async def undo(request: Request) -> JSONResponse:
    """
    summary: Undo the last life-cycle action on a question
    description: >
      Body {version}. Refused (409 undo.stale) if the question changed since, (409 undo.illegal)
      if the life cycle does not allow going back, (409 studio.on_air_taken) if it would put a
      question on air while another one is.
    responses:
      200: the question (moderator view)
    """
    hub, actor, data, event_id, qid = await _question_request(request)
    return JSONResponse(
        await hub.run(questions.undo, hub.ctx, event_id, qid, actor, expected_version=int_field(data, "version"))
    )


async def retranslate(request: Request) -> JSONResponse:
    """
    summary: Translate a question again by machine
    description: Body {version, language?}; language corrects the source language first.
    responses:
      200: the question (moderator view)
    """
    hub, actor, data, event_id, qid = await _question_request(request)
    result = await hub.run(
        questions.retranslate,
        hub.ctx,
        event_id,
        qid,
        actor,
        expected_version=int_field(data, "version"),
        language=data.get("language"),
    )
    return JSONResponse(result)


async def ban(request: Request) -> JSONResponse:
    """
    summary: Hide the asker's future questions from moderators and hosts
    description: >
      Bans the asker's viewer token for the event, and their address (by keyed hash) for
      address_minutes (body, 0 to 43200; default QA_ADDRESS_BAN_MINUTES; 0: no address ban),
      so a viewer who drops its token is still caught meanwhile.
    responses:
      200: {banned, address_banned_until}
    """
    hub, actor, data, event_id, qid = await _question_request(request)
    minutes = int_field(data, "address_minutes", required=False, low=0, high=MAX_ADDRESS_BAN_MINUTES)
    return JSONResponse(
        await hub.run(
            questions.ban_asker,
            hub.ctx,
            event_id,
            qid,
            actor,
            address_minutes=hub.settings.address_ban_minutes if minutes is None else minutes,
        )
    )


async def unban(request: Request) -> JSONResponse:
    """
    summary: Take back the ban of this question's asker
    description: >
      Removes the event's ban of the asker's viewer token and the ban of the address
      this question came from (if any). Questions hidden meanwhile stay hidden; the
      asker's next questions reach the moderators. No body.
    responses:
      200: {banned}
    """
    user = await staff(request, *MODERATORS)
    hub = hub_of(request)
    qid = path_int(request, "question_id")
    return JSONResponse(await hub.run(questions.unban_asker, hub.ctx, await hub.event_id(), qid, user.username))


async def edit_translation(request: Request) -> JSONResponse:
    """
    summary: Replace a question's translation into one language by hand
    description: Body {version, text}. A later machine translation never overwrites it.
    responses:
      200: the question (moderator view)
      409: question.stale_version
    """
    hub, actor, data, event_id, qid = await _question_request(request)
    result = await hub.run(
        questions.edit_translation,
        hub.ctx,
        event_id,
        qid,
        request.path_params["language"],
        data.get("text"),
        actor,
        expected_version=int_field(data, "version"),
    )
    return JSONResponse(result)


async def star(request: Request) -> JSONResponse:
    """
    summary: Star or unstar a question
    description: Body {version, starred}.
    responses:
      200: the question (moderator view)
    """
    hub, actor, data, event_id, qid = await _question_request(request)
    result = await hub.run(
        questions.set_starred,
        hub.ctx,
        event_id,
        qid,
        bool_field(data, "starred"),
        actor,
        expected_version=int_field(data, "version"),
    )
    return JSONResponse(result)


async def feed_visibility(request: Request) -> JSONResponse:
    """
    summary: Hide a question from the public feed, or show it again
    description: Body {version, hidden}. The question is not rejected; its asker, the queue and the host display are not affected.
    responses:
      200: the question (moderator view)
    """
    hub, actor, data, event_id, qid = await _question_request(request)
    result = await hub.run(
        questions.set_feed_hidden,
        hub.ctx,
        event_id,
        qid,
        bool_field(data, "hidden"),
        actor,
        expected_version=int_field(data, "version"),
    )
    return JSONResponse(result)


async def reorder_queue(request: Request) -> JSONResponse:
    """
    summary: Set a studio's queue order
    description: >
      Body {order:[question ids]} naming every queued question once, or {question_id, index} to
      move one; optional {version}: the studio's queue version you saw (a stale one is refused).
    responses:
      200: {order}
      400: queue.mismatch, queue.not_in_queue
      409: queue.stale_version
    """
    user = await staff(request, *MODERATORS)
    hub = hub_of(request)
    data = await json_body(request)
    studio_id = path_int(request, "studio_id")
    event_id = await hub.event_id()
    version = int_field(data, "version", required=False, low=0)  # a studio's queue version starts at 0
    if "order" in data:
        order = await hub.run(
            questions.reorder, hub.ctx, event_id, studio_id, data["order"], user.username, expected_version=version
        )
    else:
        qid, index = int_field(data, "question_id"), int_field(data, "index", low=0, high=MAX_INDEX)
        assert qid is not None and index is not None
        order = await hub.run(
            questions.move, hub.ctx, event_id, studio_id, qid, index, user.username, expected_version=version
        )
    return JSONResponse({"studio_id": studio_id, "order": order})


async def segment_status(request: Request) -> JSONResponse:
    """
    summary: Put a segment live or end it by hand (or give it back to the clock with "auto")
    description: Body {status} with status upcoming, live, ended or auto.
    responses:
      200: the segment
    """
    user = await staff(request, *MODERATORS)
    hub = hub_of(request)
    data = await json_body(request)
    status = data.get("status")
    if not isinstance(status, str):
        raise DomainError("segment.status_invalid", "status must be a string")
    result = await hub.run(
        schedule.set_status, hub.ctx, await hub.event_id(), path_int(request, "segment_id"), status, user.username
    )
    return JSONResponse(result)


async def audit_log(request: Request) -> JSONResponse:
    """
    summary: The newest moderation actions (who did what, when)
    description: Query ?limit=N (default 200, at most 1000) and ?question_id=.
    responses:
      200: {actions}
    """
    await staff(request, *MODERATORS)
    hub = hub_of(request)
    event_id = await hub.event_id()
    limit = max(1, min(AUDIT_MAX, parse_int(request.query_params.get("limit", "200"), field="limit")))
    raw_qid = request.query_params.get("question_id")
    qid = None if raw_qid is None else check_id(parse_int(raw_qid, field="question_id"), field="question_id")

    def read() -> list[dict[str, object]]:
        from sqlmodel import select

        with hub.ctx.read() as db:
            stmt = select(ModerationAction).where(ModerationAction.event_id == event_id)
            if qid is not None:
                stmt = stmt.where(ModerationAction.question_id == qid)
            rows = db.exec(stmt.order_by(ModerationAction.id.desc()).limit(limit)).all()  # type: ignore[union-attr]
            return [
                {
                    "id": r.id,
                    "question_id": r.question_id,
                    "segment_id": r.segment_id,
                    "actor": r.actor,
                    "action": r.action,
                    "before": r.before,
                    "after": r.after,
                    "at": iso(r.created_at),
                }
                for r in rows
            ]

    return JSONResponse({"actions": await hub.run(read)})


async def public_schedule(request: Request) -> JSONResponse:
    """
    summary: The public programme (event, studios, segments, speakers)
    responses:
      200: {event, studios, segments, speakers}
    """
    hub = hub_of(request)
    return JSONResponse(await hub.run(snapshots.schedule, hub.ctx, await hub.event_id()))


async def host_queue(request: Request) -> JSONResponse:
    """
    summary: A studio's host queue, opened with the studio's signed link token
    responses:
      200: {studio, schedule, questions}
      401: host.link_invalid
    """
    from ..hub.endpoints import studio_from_token

    hub = hub_of(request)
    studio = await hub.run(studio_from_token, hub, request.path_params["token"])
    if studio is None or studio.id is None:
        raise NotFound("host.link_invalid", "this host link is invalid or was revoked")
    return JSONResponse(await hub.run(snapshots.host, hub.ctx, await hub.event_id(), studio.id))
