"""Login, logout and who-am-I for staff. Sessions are signed cookies
(HttpOnly, SameSite=Lax) holding the user id, a server-side session id and a
CSRF token; logout ends the session on the server too."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..security import new_csrf_token
from ..services import accounts
from .common import Unauthorized, hub_of, json_body, staff


async def login(request: Request) -> JSONResponse:
    """
    summary: Log in as staff
    requestBody: {username, password}
    responses:
      200: {user, role, csrf_token}
      401: auth.invalid
    """
    hub = hub_of(request)
    data = await json_body(request)
    if await hub.rate_limited(f"login:{request.client.host if request.client else '-'}", 20):
        raise Unauthorized("rate.limited", "too many login attempts; wait a minute")
    user = await hub.run(accounts.authenticate, hub.ctx, data.get("username"), data.get("password"))
    if user is None:
        raise Unauthorized("auth.invalid", "wrong username or password")
    request.session.clear()
    csrf = new_csrf_token()
    assert user.id is not None
    sid = await hub.run(accounts.start_session, hub.ctx, user.id)
    request.session.update({"uid": user.id, "sid": sid, "csrf": csrf})
    return JSONResponse({"user": user.username, "role": user.role, "csrf_token": csrf})


async def logout(request: Request) -> JSONResponse:
    """
    summary: Log out (ends the session on the server; its open sockets close with 4401)
    responses:
      200: {}
    """
    hub = hub_of(request)
    await hub.run(accounts.end_session, hub.ctx, request.session.get("sid"))
    request.session.clear()
    return JSONResponse({})


async def me(request: Request) -> JSONResponse:
    """
    summary: The logged-in user and the CSRF token to send with writes
    responses:
      200: {user, role, csrf_token}
      401: auth.required
    """
    user = await staff(request)
    return JSONResponse({"user": user.username, "role": user.role, "csrf_token": request.session.get("csrf")})
