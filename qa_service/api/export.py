"""The organiser's export over REST: a file to download (staff only)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..domain.errors import DomainError
from ..domain.validation import check_id, parse_int
from ..services import export as exports
from .common import hub_of, staff
from .moderation import MODERATORS


def _choice(request: Request, key: str, allowed: tuple[str, ...], default: str) -> str:
    value = request.query_params.get(key, default)
    if value not in allowed:
        raise DomainError("request.invalid", f"{key} must be one of {', '.join(allowed)}", field=key)
    return value


def _id(request: Request, key: str) -> int | None:
    raw = request.query_params.get(key)
    return None if raw is None else check_id(parse_int(raw, field=key), field=key)


async def download(request: Request) -> Response:
    """
    summary: Export questions, the moderation log or the unanswered questions as a file
    description: >
      Query format (csv, json, xlsx; default csv), what (questions, log, unanswered;
      default questions), and optional speaker, studio, segment ids to narrow it.
      The unanswered file carries the askers' consented e-mail addresses for admins
      only; a moderator gets it without them (wants_answer says who asked for an answer).
    responses:
      200: the file (Content-Disposition attachment)
      400: request.invalid
      404: speaker.unknown, studio.unknown, segment.unknown, event.unknown
    """
    user = await staff(request, *MODERATORS)
    fmt = _choice(request, "format", exports.FORMATS, "csv")
    what = _choice(request, "what", exports.WHAT, "questions")
    filters = exports.Filters(_id(request, "speaker"), _id(request, "studio"), _id(request, "segment"))
    hub = hub_of(request)
    await hub.event_id()  # event.not_loaded, as everywhere

    def build() -> tuple[str, bytes]:
        out = exports.build(hub.ctx, hub.settings.event, what, filters, contacts=user.role == "admin")
        return out.filename(fmt), out.render(fmt)

    name, body = await hub.run(build)
    return Response(
        body,
        media_type=exports.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
