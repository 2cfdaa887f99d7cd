"""Login, logout and who-am-I for staff. Sessions are signed cookies
(HttpOnly, SameSite=Lax) holding the user id, a server-side session id and a
CSRF token; logout ends the session on the server too.

Login attempts are limited per client address and per account (by normalised
name), across hubs: an address guessing passwords is stopped without locking
anyone else out; guessing one account's password from many addresses locks that
account only, for as long as the guessing goes on (docs/security.md)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..edge import client_key
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
      429: rate.limited (Retry-After)
    """
    hub = hub_of(request)
    data = await json_body(request)
    s = hub.settings
    address = client_key(request.client.host) if request.client else "-"
    await hub.limit(f"login:ip:{address}", s.login_attempts_per_address)
    await hub.limit(f"login:user:{accounts.limit_key(data.get('username'))}", s.login_attempts_per_account)
    user = await hub.run_login(accounts.authenticate, hub.ctx, data.get("username"), data.get("password"))
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
