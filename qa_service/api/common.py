"""Shared pieces of the REST edge: JSON bodies, errors, staff auth, CSRF."""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..db.models import User
from ..domain.errors import DomainError, Forbidden
from ..hub.hub import Hub
from ..security import csrf_matches
from ..services import accounts

MAX_BODY = 256 * 1024
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
    body = await request.body()
    if len(body) > MAX_BODY:
        raise DomainError("request.too_large", f"request bodies are limited to {MAX_BODY} bytes")
    try:
        data = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DomainError("request.malformed", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise DomainError("request.invalid", "the body must be a JSON object")
    return data


async def staff(request: Request, *roles: str) -> User:
    """The logged-in user, if their role is one of ``roles``; CSRF-checked for writes."""
    hub = hub_of(request)
    user = await hub.run(accounts.session_user, hub.ctx, request.session.get("uid"), request.session.get("sid"))
    if user is None:
        raise Unauthorized("auth.required", "log in first")
    if roles and user.role not in roles:
        raise Forbidden("auth.forbidden", f"this needs one of the roles: {', '.join(roles)}")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        if not csrf_matches(request.session.get("csrf"), request.headers.get(CSRF_HEADER)):
            raise Forbidden("auth.csrf", "missing or wrong CSRF token (send the X-CSRF-Token header)")
    return user


def int_field(data: dict[str, Any], key: str, *, required: bool = True) -> int | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise DomainError("request.invalid", f"'{key}' must be an integer")
    return value


def path_int(request: Request, key: str) -> int:
    try:
        return int(request.path_params[key])
    except (KeyError, ValueError):
        raise DomainError("request.invalid", f"bad {key}") from None
