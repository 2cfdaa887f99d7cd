"""Shared pieces of the REST edge: JSON bodies, errors, staff auth, CSRF."""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..db.models import User
from ..domain.errors import DomainError, Forbidden
from ..domain.validation import MAX_ID, check_int, parse_int
from ..hub import protocol
from ..hub.hub import Hub
from ..security import csrf_matches
from ..services import accounts

CSRF_HEADER = "x-csrf-token"


class Unauthorized(DomainError):
    status = 401


def hub_of(request: Request) -> Hub:
    return request.app.state.hub  # type: ignore[no-any-return]


def error_response(exc: DomainError) -> JSONResponse:
    """The one error body; an error that names ``retry_after`` (a limit) sets Retry-After too."""
    body = {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}
    retry_after = exc.details.get("retry_after")
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if isinstance(retry_after, int | float) else None
    return JSONResponse(body, exc.status, headers=headers)


async def json_body(request: Request) -> dict[str, Any]:
    """The JSON object of the body (its size already capped while reading, QA_MAX_BODY_BYTES)."""
    body = await request.body()
    try:
        data = protocol.load_json(body or b"{}")  # the sockets' parser: depth and number size bounded
    except protocol.ProtocolError as exc:  # message.malformed → request.malformed, and so on
        raise DomainError("request." + exc.code.split(".", 1)[1], exc.message, **exc.details) from None
    if not isinstance(data, dict):
        raise DomainError("request.invalid", "the body must be a JSON object")
    return data


async def staff(request: Request, *roles: str) -> User:
    """The logged-in user, if their role is one of ``roles``; CSRF-checked for writes."""
    hub = hub_of(request)
    user = await hub.run(accounts.session_user, hub.ctx, request.session.get("uid"), request.session.get("sid"))
    if user is None:
        raise Unauthorized("auth.required", "log in first")
    # A forged write is refused as such, whoever's cookie it rides on; then the role.
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        if not csrf_matches(request.session.get("csrf"), request.headers.get(CSRF_HEADER)):
            raise Forbidden("auth.csrf", "missing or wrong CSRF token (send the X-CSRF-Token header)")
    if roles and user.role not in roles:
        raise Forbidden("auth.forbidden", f"this needs one of the roles: {', '.join(roles)}")
    return user


def int_field(data: dict[str, Any], key: str, *, required: bool = True, low: int = 1, high: int = MAX_ID) -> int | None:
    """An integer of a JSON body, by default an id or a version (1 to 2,147,483,647)."""
    value = data.get(key)
    if value is None and not required:
        return None
    return check_int(value, field=f"'{key}'", low=low, high=high)


def path_int(request: Request, key: str) -> int:
    """An id in the path (the route's int converter takes any run of digits)."""
    value = request.path_params.get(key)
    if isinstance(value, str):
        value = parse_int(value, field=key)
    return check_int(value, field=key, low=1, high=MAX_ID)


def bool_field(data: dict[str, Any], key: str, *, default: bool | None = None) -> bool:
    """A JSON boolean; absent (or null) takes ``default``, or is refused when there is none."""
    value = data.get(key)
    if value is None and default is not None:
        return default
    if not isinstance(value, bool):
        raise DomainError("request.invalid", f"'{key}' must be true or false")
    return value


def optional_text(data: dict[str, Any], key: str) -> str | None:
    """An optional JSON string (absent or null: None)."""
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise DomainError("request.invalid", f"'{key}' must be a string")
    return value
